//! Oasis identity domain.
