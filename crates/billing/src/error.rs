/// Billing failures; each variant's doc says the HTTP status the routes map it to.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// 400 with a field message.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 400: a Checkout signature did not verify; nothing is recorded.
    #[error("invalid payment signature")]
    BadSignature,
    /// 404: the tier, order or subscription does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// 400: the caller already holds a live membership of this tier.
    #[error("already subscribed")]
    AlreadySubscribed,
    /// 400: the trial was authorised with a card or UPI ID that already had a trial of this
    /// creator ([`crate::trials`]); the membership is voided and its subscription cancelled.
    #[error("trial already used with this card or UPI ID")]
    TrialUsed,
    /// 409: the same request is being processed right now.
    #[error("request in progress")]
    InProgress,
    /// 502: the payment gateway failed, refused or answered something unusable (the cause is
    /// logged; the client gets one fixed message).
    #[error("payment provider: {0}")]
    Gateway(#[from] crate::gateway::GatewayError),
    /// 500/503: storage failed.
    #[error(transparent)]
    Repo(#[from] oasis_kernel::RepoError),
}

impl BillingError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
