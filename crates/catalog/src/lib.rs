//! Oasis catalog domain.
