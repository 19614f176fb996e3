//! Oasis commissions domain.
