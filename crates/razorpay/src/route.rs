//! Razorpay Route: linked accounts (`/v2/accounts`), their stakeholders and `route` product
//! configuration, transfers from payments, reversals, settlements and disputes (see `ROUTE.md`).
//! Entities deserialise leniently like the rest of [`crate::types`].

use crate::de;
use crate::notes::Notes;
use crate::types::string_enum;
use serde::{Deserialize, Serialize};

string_enum! {
    /// A linked account's `status`.
    AccountStatus {
        /// Created (the product configuration decides whether it can receive transfers).
        Created => "created",
        /// Activated.
        Activated => "activated",
        /// Needs clarification.
        NeedsClarification => "needs_clarification",
        /// Under review.
        UnderReview => "under_review",
        /// Suspended: no transfers.
        Suspended => "suspended",
    }
}

string_enum! {
    /// A product configuration's `activation_status`.
    ActivationStatus {
        /// Requested, details not complete.
        Requested => "requested",
        /// Razorpay needs more information.
        NeedsClarification => "needs_clarification",
        /// Being reviewed.
        UnderReview => "under_review",
        /// Active: transfers can be made.
        Activated => "activated",
        /// Suspended.
        Suspended => "suspended",
    }
}

string_enum! {
    /// A transfer's `status`.
    TransferStatus {
        /// Created.
        Created => "created",
        /// Being processed.
        Pending => "pending",
        /// Credited to the linked account's balance.
        Processed => "processed",
        /// Failed (see `error`).
        Failed => "failed",
        /// Fully reversed.
        Reversed => "reversed",
        /// Partly reversed.
        PartiallyReversed => "partially_reversed",
    }
}

/// A Route linked account (`acc_…`, `/v2/accounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkedAccount {
    /// `acc_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `"route"`.
    #[serde(rename = "type", deserialize_with = "de::string")]
    pub account_type: String,
    /// Status.
    pub status: AccountStatus,
    /// Contact e-mail.
    #[serde(deserialize_with = "de::string")]
    pub email: String,
    /// Contact phone.
    #[serde(deserialize_with = "de::string")]
    pub phone: String,
    /// Our reference (<= 20 characters).
    #[serde(deserialize_with = "de::opt_string")]
    pub reference_id: Option<String>,
    /// Legal business name.
    #[serde(deserialize_with = "de::string")]
    pub legal_business_name: String,
    /// `individual`, `proprietorship`, `partnership`, …
    #[serde(deserialize_with = "de::string")]
    pub business_type: String,
    /// Contact name.
    #[serde(deserialize_with = "de::opt_string")]
    pub contact_name: Option<String>,
    /// Profile (category, subcategory, addresses), kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub profile: serde_json::Value,
    /// Legal info (pan, gst), kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub legal_info: serde_json::Value,
    /// Notes.
    pub notes: Notes,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// `POST /v2/accounts` (and, every field optional in practice, `PATCH /v2/accounts/:id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateLinkedAccount {
    /// Contact e-mail.
    pub email: String,
    /// Contact phone (8 to 15 digits).
    pub phone: String,
    /// Always `"route"`.
    #[serde(rename = "type")]
    pub account_type: String,
    /// Our reference (<= 20 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// Legal business name (4 to 200 characters).
    pub legal_business_name: String,
    /// `individual`, `proprietorship`, `partnership`, `private_limited`, …
    pub business_type: String,
    /// Contact name.
    pub contact_name: String,
    /// Profile (category, subcategory, addresses).
    pub profile: serde_json::Value,
}

/// `PATCH /v2/accounts/:id`: the fields Oasis changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateLinkedAccount {
    /// Contact phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Legal business name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_business_name: Option<String>,
    /// Contact name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
}

/// A stakeholder of a linked account (`sth_…`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stakeholder {
    /// `sth_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `"stakeholder"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Name.
    #[serde(deserialize_with = "de::string")]
    pub name: String,
    /// E-mail.
    #[serde(deserialize_with = "de::string")]
    pub email: String,
    /// `{primary, secondary}`, kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub phone: serde_json::Value,
    /// Notes.
    pub notes: Notes,
}

/// `POST /v2/accounts/:id/stakeholders` / `PATCH …/stakeholders/:sid`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateStakeholder {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// The settlement bank account of a `route` product configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SettlementAccount {
    /// Account number.
    #[serde(deserialize_with = "de::opt_string")]
    pub account_number: Option<String>,
    /// IFSC.
    #[serde(deserialize_with = "de::opt_string")]
    pub ifsc_code: Option<String>,
    /// Beneficiary name.
    #[serde(deserialize_with = "de::opt_string")]
    pub beneficiary_name: Option<String>,
}

/// A product configuration of a linked account (`acc_prd_…`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductConfiguration {
    /// `acc_prd_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `acc_…`.
    #[serde(deserialize_with = "de::string")]
    pub account_id: String,
    /// `"route"`.
    #[serde(deserialize_with = "de::string")]
    pub product_name: String,
    /// Activation status.
    pub activation_status: ActivationStatus,
    /// Requirements still open (field_reference, resolution_url, status, reason_code), as JSON.
    pub requirements: Vec<serde_json::Value>,
    /// Active configuration (`settlements`, …), kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub active_configuration: serde_json::Value,
    /// Requested configuration, kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub requested_configuration: serde_json::Value,
    /// Whether the terms were accepted, kept as JSON (Razorpay answers an object).
    #[serde(deserialize_with = "de::value")]
    pub tnc: serde_json::Value,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub requested_at: i64,
}

/// `POST /v2/accounts/:id/products`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestProduct {
    /// `"route"`.
    pub product_name: String,
    /// Terms accepted.
    pub tnc_accepted: bool,
}

/// `PATCH /v2/accounts/:id/products/:pid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateProduct {
    /// The settlement bank account.
    pub settlements: SettlementAccount,
    /// Terms accepted.
    pub tnc_accepted: bool,
}

/// The error of a failed transfer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferError {
    /// Code.
    #[serde(deserialize_with = "de::opt_string")]
    pub code: Option<String>,
    /// Description.
    #[serde(deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// Reason.
    #[serde(deserialize_with = "de::opt_string")]
    pub reason: Option<String>,
}

/// A transfer (`trf_…`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Transfer {
    /// `trf_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `"transfer"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Status.
    pub status: TransferStatus,
    /// `pay_…` it was made from.
    #[serde(deserialize_with = "de::string")]
    pub source: String,
    /// `acc_…` it was made to.
    #[serde(deserialize_with = "de::string")]
    pub recipient: String,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// `INR`.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// Minor units reversed.
    #[serde(deserialize_with = "de::int")]
    pub amount_reversed: i64,
    /// Fees (minor units).
    #[serde(deserialize_with = "de::int")]
    pub fees: i64,
    /// Tax (minor units).
    #[serde(deserialize_with = "de::int")]
    pub tax: i64,
    /// Notes (Oasis puts its intent id under `oasis_transfer`).
    pub notes: Notes,
    /// Settlement to the linked account held.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub on_hold: bool,
    /// Hold end (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub on_hold_until: Option<i64>,
    /// `setl_…` once settled to the linked account's bank.
    #[serde(deserialize_with = "de::opt_string")]
    pub recipient_settlement_id: Option<String>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub processed_at: Option<i64>,
    /// Why it failed.
    pub error: TransferError,
}

/// One transfer of `POST /v1/payments/:id/transfers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewTransfer {
    /// `acc_…`.
    pub account: String,
    /// Minor units.
    pub amount: i64,
    /// `INR`.
    pub currency: String,
    /// Notes.
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
    /// Hold the linked account's settlement.
    pub on_hold: bool,
}

/// `POST /v1/payments/:id/transfers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTransfers {
    /// The transfers.
    pub transfers: Vec<NewTransfer>,
}

/// `PATCH /v1/transfers/:id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateTransfer {
    /// Hold (or release) the settlement.
    pub on_hold: bool,
    /// Hold until (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_hold_until: Option<i64>,
}

/// A reversal (`rvrsl_…`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reversal {
    /// `rvrsl_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `"reversal"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// `trf_…`.
    #[serde(deserialize_with = "de::string")]
    pub transfer_id: String,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// Currency.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// Notes (Oasis puts its intent under `oasis_reversal`).
    pub notes: Notes,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// `POST /v1/transfers/:id/reversals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateReversal {
    /// Minor units (the whole unreversed amount when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
}

/// A settlement (`setl_…`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settlement {
    /// `setl_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `"settlement"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// `processed`, …
    #[serde(deserialize_with = "de::string")]
    pub status: String,
    /// Fees.
    #[serde(deserialize_with = "de::int")]
    pub fees: i64,
    /// Tax.
    #[serde(deserialize_with = "de::int")]
    pub tax: i64,
    /// The bank's reference.
    #[serde(deserialize_with = "de::opt_string")]
    pub utr: Option<String>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// A dispute (`disp_…`) of a payment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dispute {
    /// `disp_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `"dispute"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// `pay_…`.
    #[serde(deserialize_with = "de::string")]
    pub payment_id: String,
    /// Minor units disputed.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// Currency.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// `open`, `under_review`, `won`, `lost`, `closed`.
    #[serde(deserialize_with = "de::string")]
    pub status: String,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// `payload.merchant_product.entity` of `product.route.*` webhooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MerchantProduct {
    /// `acc_prd_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// The linked account `acc_…`.
    #[serde(deserialize_with = "de::string")]
    pub merchant_id: String,
    /// Activation status.
    pub activation_status: ActivationStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_mock_shapes_parse() {
        // The official Python SDK's tests/mocks/fake_transfer.json and fake_settlement.json.
        let t: Transfer = serde_json::from_str(
            r#"{"amount":100,"amount_reversed":0,"created_at":1506722466,"currency":"INR",
            "entity":"transfer","fees":0,"id":"trf_8jIlBetfktf1dG","notes":[],"on_hold":false,
            "on_hold_until":null,"recipient":"acc_7jO4N6LScw5CEG","recipient_settlement_id":null,
            "service_tax":0,"source":"acc_10000000000000","tax":0}"#,
        )
        .unwrap();
        assert_eq!(
            (t.amount, t.on_hold, t.notes.is_empty()),
            (100, false, true)
        );
        assert_eq!(t.status, TransferStatus::Other(String::new()));
        let s: Settlement = serde_json::from_str(
            r#"{"id":"setl_7IZKKI4Pnt2kEe","entity":"settlement","amount":60000,
            "status":"processed","fees":123,"tax":12,"utr":"RZRP111111111111","created_at":1455696913}"#,
        )
        .unwrap();
        assert_eq!(s.utr.as_deref(), Some("RZRP111111111111"));
        let p: MerchantProduct = serde_json::from_str(
            r#"{"id":"acc_prd_JI1B2u6icYerAJ","merchant_id":"acc_JI0zziTMTmOmSI","activation_status":"activated"}"#,
        )
        .unwrap();
        assert_eq!(p.activation_status, ActivationStatus::Activated);
    }
}
