//! Oasis billing domain.
