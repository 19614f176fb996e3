//! Wire shapes of the commissions routes (the seed's field names).
use crate::routes::catalog::MediaLinks;
use chrono::{DateTime, Utc};
use oasis_commissions::model::{OfferingView, RequestView};
use oasis_commissions::{OfferingInput, RequestInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An offering.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferingDto {
    pub id: i64,
    /// The creator's user id.
    pub creator: i64,
    pub title: String,
    pub description: String,
    /// Integer minor units.
    pub price: i64,
    pub currency: String,
    pub delivery_days: i32,
    /// How many requests may hold a slot at once.
    pub slots: i32,
    /// Requests holding a slot now (unpaid ones during their payment hold, paid ones until
    /// delivered).
    pub open_orders: i64,
    pub is_open: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn offering_dto(v: &OfferingView) -> OfferingDto {
    let o = &v.offering;
    OfferingDto {
        id: o.id,
        creator: o.creator_id,
        title: o.title.clone(),
        description: o.description.clone(),
        price: o.price,
        currency: o.currency.code().to_owned(),
        delivery_days: o.delivery_days,
        slots: o.slots,
        open_orders: v.open_orders,
        is_open: o.is_open,
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

/// An offering in the public list, with its creator's `username` and `profile_pic` beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicOfferingDto {
    #[serde(flatten)]
    pub offering: OfferingDto,
    pub username: String,
    pub profile_pic: Option<String>,
}

pub fn public_offering_dto(v: &OfferingView) -> PublicOfferingDto {
    PublicOfferingDto {
        offering: offering_dto(v),
        username: v.creator.username.clone(),
        profile_pic: v.creator.profile_pic.clone(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct OfferingPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<OfferingDto>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicOfferingPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<PublicOfferingDto>,
}

/// An offering's fields: all but `description` ("") and `is_open` (true) required on create;
/// any subset on PATCH.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OfferingBody {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Integer minor units, at least 100 (Razorpay's minimum for INR and USD).
    pub price: Option<i64>,
    /// `INR` or `USD`.
    pub currency: Option<String>,
    /// 1–365.
    pub delivery_days: Option<i64>,
    /// 1–1000.
    pub slots: Option<i64>,
    pub is_open: Option<bool>,
}

impl From<OfferingBody> for OfferingInput {
    fn from(b: OfferingBody) -> Self {
        OfferingInput {
            title: b.title,
            description: b.description,
            price: b.price,
            currency: b.currency,
            delivery_days: b.delivery_days,
            slots: b.slots,
            is_open: b.is_open,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Deletable {
    pub deletable: bool,
}

/// A fan's request for a commission (the seed's field names).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestBody {
    #[serde(rename = "commissionID")]
    #[schema(value_type = i64)]
    pub commission_id: Option<Value>,
    pub description: Option<String>,
    #[serde(rename = "contactDetails")]
    pub contact_details: Option<String>,
    /// A short string (≤ 100 characters; the seed's frontends send "1").
    #[schema(value_type = Option<String>)]
    pub mode_of_delivery: Option<Value>,
    /// Must be the offering's when given.
    pub currency: Option<String>,
}

impl RequestBody {
    pub fn input(&self) -> Result<RequestInput, crate::error::ApiError> {
        let commission_id = crate::routes::billing::int_field(&self.commission_id, "commissionID")?;
        let mode = match &self.mode_of_delivery {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(crate::error::ApiError::field(
                    "mode_of_delivery",
                    "Not a valid string.",
                ))
            }
        };
        Ok(RequestInput {
            commission_id,
            description: self.description.clone().unwrap_or_default(),
            contact_details: self.contact_details.clone().unwrap_or_default(),
            mode_of_delivery: mode,
            currency: self.currency.clone(),
        })
    }
}

/// A started request: Checkout opens `SubscriptionID` (the `order_…`) with `public_key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestStarted {
    pub id: i64,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    #[serde(rename = "SubscriptionID")]
    pub subscription_id: String,
    pub public_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Named {
    pub id: i64,
    pub title: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub id: i64,
    pub username: String,
    pub profile_pic: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    pub status: String,
    pub at: DateTime<Utc>,
    /// The acting user's id, or `"system"`.
    #[schema(schema_with = acting_party)]
    pub by: Value,
    pub message: Option<String>,
}

/// `HistoryDto.by`: an integer (a user's id) or the string `"system"`.
fn acting_party() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Integer).format(Some(
            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
        )))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["system"])),
        )
        .description(Some("The acting user's id, or `\"system\"`."))
        .build()
        .into()
}

/// A delivered file: a short-lived signed link bound to the viewer (the fan or the creator).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveredFile {
    pub id: i64,
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    pub message: String,
    pub attachments: Vec<DeliveredFile>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundDto {
    pub amount: i64,
    /// `pending`, `processed` or `failed`.
    pub status: String,
    pub at: DateTime<Utc>,
}

/// A request as its fan and its creator see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestDto {
    pub id: i64,
    pub commission: Named,
    pub fan: Person,
    pub creator: Person,
    pub description: String,
    pub contact_details: String,
    pub mode_of_delivery: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    /// Payment time + the offering's delivery days (null while unpaid).
    pub deliver_by: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Oldest first, starting with `awaiting_payment`.
    pub history: Vec<HistoryDto>,
    pub delivery: Option<DeliveryDto>,
    pub refund: Option<RefundDto>,
}

fn person(u: &oasis_commissions::model::UserRef) -> Person {
    Person {
        id: u.id,
        username: u.username.clone(),
        profile_pic: u.profile_pic.clone(),
    }
}

pub fn request_dto(v: &RequestView, links: &MediaLinks) -> RequestDto {
    let r = &v.request;
    RequestDto {
        id: r.id,
        commission: Named {
            id: r.commission_id,
            title: v.title.clone(),
        },
        fan: person(&v.fan),
        creator: person(&v.creator),
        description: r.description.clone(),
        contact_details: r.contact_details.clone(),
        mode_of_delivery: r.mode_of_delivery.clone(),
        status: r.status.as_str().to_owned(),
        amount: r.amount,
        currency: r.currency.code().to_owned(),
        deliver_by: r.deliver_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
        history: v
            .history
            .iter()
            .map(|h| HistoryDto {
                status: h.status.as_str().to_owned(),
                at: h.at,
                by: h
                    .by
                    .map(Value::from)
                    .unwrap_or_else(|| Value::from("system")),
                message: h.message.clone(),
            })
            .collect(),
        delivery: v.delivery.as_ref().map(|d| DeliveryDto {
            message: d.message.clone(),
            attachments: d
                .attachments
                .iter()
                .map(|m| DeliveredFile {
                    id: *m,
                    url: links.url(*m),
                })
                .collect(),
        }),
        refund: v.refund.as_ref().map(|f| RefundDto {
            amount: f.amount,
            status: f.state.as_str().to_owned(),
            at: f.at,
        }),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RequestPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<RequestDto>,
}

/// A change of status: `accepted`, `in_progress`, `delivered` (with `message` and optional
/// `attachments`: media ids from `/content/api/media/`), `rejected` (with a reason in
/// `message`), `cancelled`, `completed`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusBody {
    pub status: Option<String>,
    pub message: Option<String>,
    pub attachments: Option<Vec<i64>>,
}

/// Checkout's answer for a request's order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmBody {
    pub razorpay_order_id: Option<String>,
    pub razorpay_payment_id: Option<String>,
    pub razorpay_signature: Option<String>,
}
