//! Oasis social domain.
