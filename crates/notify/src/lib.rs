//! Oasis notify domain.
