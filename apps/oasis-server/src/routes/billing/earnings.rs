//! `/subscriptions/api/earnings`: a creator's balances per currency (from the earnings ledger)
//! and `/subscriptions/api/earnings/statement`: their ledger lines of a period, DRF-paginated
//! JSON or (`?format=csv`) a CSV file with a header row. Amounts are integer minor units.
use super::api_error;
use crate::auth::CreatorUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::pagination::paginated;
use crate::web;
use crate::workflows::billing_db::billing_ports;
use actix_web::{HttpRequest, HttpResponse};
use oasis_billing::ledger::{Balance, StatementLine};
use oasis_billing::workflows::ledger::{self as flow, Period};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One currency's balance.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BalanceOut {
    /// Captured, waiting for a transfer to the creator's linked account (INR).
    pending: i64,
    /// Held: commissions until completed, memberships for the hold period, payments under review.
    on_hold: i64,
    transferred: i64,
    settled: i64,
    disputed: i64,
    /// Razorpay's fee (GST included) and the platform fee, kept from the creator's payments.
    fees: i64,
    /// Non-INR money an operator pays out by hand.
    available_for_manual_payout: i64,
    /// Gross received, after refunds.
    gross: i64,
    /// Everything the creator earned: the buckets above without `fees` (= `gross - fees`).
    net: i64,
}

impl From<&Balance> for BalanceOut {
    fn from(b: &Balance) -> Self {
        Self {
            pending: b.pending,
            on_hold: b.on_hold,
            transferred: b.transferred,
            settled: b.settled,
            disputed: b.disputed,
            fees: b.fees,
            available_for_manual_payout: b.available_for_manual_payout,
            gross: b.gross,
            net: b.net(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EarningsOut {
    /// Balances by ISO currency code.
    balances: BTreeMap<String, BalanceOut>,
    /// `not_set_up`, `pending`, `active`, `needs_clarification` or `suspended`.
    payout_status: &'static str,
}

/// The caller's balances per currency and payout status.
#[utoipa::path(get, path = "/subscriptions/api/earnings", tag = "billing",
    responses((status = 200, body = EarningsOut), (status = 401), (status = 403, description = "not a creator")),
    security(("token" = []), ("jwt" = [])))]
pub async fn earnings(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = billing_ports(&ctx);
    let e = flow::earnings(&db, user.user_id).await.map_err(api_error)?;
    Ok(HttpResponse::Ok().json(EarningsOut {
        balances: e
            .balances
            .iter()
            .map(|b| (b.currency.clone(), BalanceOut::from(b)))
            .collect(),
        payout_status: e.payout_status.as_str(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct StatementQuery {
    /// First day (ISO date, UTC), inclusive.
    from: Option<String>,
    /// Last day (ISO date, UTC), inclusive.
    to: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// One ledger line.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LineOut {
    date: chrono::DateTime<chrono::Utc>,
    /// `pay_…`.
    payment: Option<String>,
    /// `capture` or `refund`.
    kind: &'static str,
    /// What was paid for: `membership`, `one_time`, `cheer` or `commission`.
    #[serde(rename = "type")]
    source: Option<&'static str>,
    currency: String,
    gross: i64,
    gateway_fee: i64,
    platform_fee: i64,
    net: i64,
    /// The Route transfer (`trf_…`), once made.
    transfer: Option<String>,
    /// The bank reference of the settlement that paid it out.
    settlement_utr: Option<String>,
}

impl From<StatementLine> for LineOut {
    fn from(l: StatementLine) -> Self {
        Self {
            date: l.at,
            payment: l.payment_id,
            kind: l.kind.as_str(),
            source: l.source.map(|s| s.as_str()),
            currency: l.currency,
            gross: l.gross,
            gateway_fee: l.gateway_fee,
            platform_fee: l.platform_fee,
            net: l.net,
            transfer: l.transfer_id,
            settlement_utr: l.settlement_utr,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatementPage {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<LineOut>,
}

fn date(v: &Option<String>, field: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<chrono::NaiveDate>().map_err(|_| {
                ApiError::field(
                    field,
                    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                )
            })
        })
        .transpose()
}

/// The caller's ledger lines of a period, oldest first: JSON pages, or all of them as CSV.
#[utoipa::path(get, path = "/subscriptions/api/earnings/statement", tag = "billing",
    params(StatementQuery),
    responses((status = 200, body = StatementPage, description = "JSON page; with `format=csv` a text/csv file with the same columns"),
        (status = 400), (status = 401), (status = 403, description = "not a creator")),
    security(("token" = []), ("jwt" = [])))]
pub async fn statement(
    user: CreatorUser,
    req: HttpRequest,
    q: web::Query<StatementQuery>,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = (date(&q.from, "from")?, date(&q.to, "to")?);
    let period = Period::from_dates(from, to).map_err(api_error)?;
    let (db, _) = billing_ports(&ctx);
    match q.format.as_deref().unwrap_or("json") {
        "json" => {
            let page = crate::pagination::page_request(&req, q.page, q.page_size)?;
            let p = flow::statement(&db, user.user_id, period, page)
                .await
                .map_err(api_error)?;
            let p = paginated(&req, page, p.map(LineOut::from))?;
            Ok(HttpResponse::Ok().json(StatementPage {
                count: p.count,
                next: p.next,
                previous: p.previous,
                results: p.results,
            }))
        }
        "csv" => {
            let lines = flow::statement_export(
                &db,
                user.user_id,
                period,
                ctx.settings.statement_csv_max_rows,
            )
            .await
            .map_err(api_error)?;
            let body = csv_of(lines.into_iter().map(LineOut::from))?;
            let name = format!(
                "oasis-statement-{}-{}.csv",
                from.map(|d| d.to_string())
                    .unwrap_or_else(|| "start".into()),
                to.map(|d| d.to_string()).unwrap_or_else(|| "now".into()),
            );
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    actix_web::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ))
                .body(body))
        }
        _ => Err(ApiError::field("format", "Use `json` or `csv`.")),
    }
}

/// The CSV file: a header row, then one row per line (RFC 4180 quoting by the `csv` crate).
fn csv_of(lines: impl Iterator<Item = LineOut>) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::internal(format!("statement CSV: {e}"));
    // The header row even when the period has no lines.
    w.write_record(CSV_HEADER).map_err(fail)?;
    for l in lines {
        w.serialize(CsvRow::from(l)).map_err(fail)?;
    }
    w.into_inner().map_err(|e| fail(e.into_error().into()))
}

const CSV_HEADER: [&str; 11] = [
    "date",
    "payment",
    "kind",
    "type",
    "currency",
    "gross",
    "gateway_fee",
    "platform_fee",
    "net",
    "transfer",
    "settlement_utr",
];

/// A CSV row: the JSON line's fields in [`CSV_HEADER`]'s order, the date as RFC 3339.
#[derive(Serialize)]
struct CsvRow {
    date: String,
    payment: String,
    kind: &'static str,
    #[serde(rename = "type")]
    source: &'static str,
    currency: String,
    gross: i64,
    gateway_fee: i64,
    platform_fee: i64,
    net: i64,
    transfer: String,
    settlement_utr: String,
}

impl From<LineOut> for CsvRow {
    fn from(l: LineOut) -> Self {
        Self {
            date: l.date.to_rfc3339(),
            payment: l.payment.unwrap_or_default(),
            kind: l.kind,
            source: l.source.unwrap_or_default(),
            currency: l.currency,
            gross: l.gross,
            gateway_fee: l.gateway_fee,
            platform_fee: l.platform_fee,
            net: l.net,
            transfer: l.transfer.unwrap_or_default(),
            settlement_utr: l.settlement_utr.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PayoutsQuery {
    page: Option<i64>,
    page_size: Option<i64>,
}

/// One attempt at transferring a payment's net through Razorpay Route.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PayoutOut {
    id: i64,
    /// `pay_…` the transfer is made from.
    payment: String,
    /// 1 for the first attempt; a failed attempt's retry is the next.
    attempt: i32,
    /// `trf_…` once Razorpay made it.
    transfer: Option<String>,
    amount: i64,
    currency: String,
    /// `created`, `processed`, `failed`, `reversed` or `settled`.
    status: &'static str,
    /// Held until the commission it pays is completed.
    on_hold: bool,
    /// Why it failed.
    error: Option<String>,
    /// `setl_…` and its bank reference (UTR), once settled.
    settlement: Option<String>,
    settlement_reference: Option<String>,
    created: chrono::DateTime<chrono::Utc>,
}

impl From<oasis_billing::payouts::TransferRecord> for PayoutOut {
    fn from(t: oasis_billing::payouts::TransferRecord) -> Self {
        Self {
            id: t.id,
            payment: t.payment_id,
            attempt: t.attempt,
            transfer: t.transfer_id,
            amount: t.amount,
            currency: t.currency,
            status: t.status.as_str(),
            on_hold: t.on_hold,
            error: t.error,
            settlement: t.settlement_id,
            settlement_reference: t.utr,
            created: t.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PayoutPage {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<PayoutOut>,
}

/// The caller's Route transfers (every attempt, newest first), DRF-paginated.
#[utoipa::path(get, path = "/subscriptions/api/payouts", tag = "billing", params(PayoutsQuery),
    responses((status = 200, body = PayoutPage), (status = 400, description = "bad page or page_size"),
        (status = 401), (status = 403, description = "not a creator"), (status = 404, description = "`Invalid page.`")),
    security(("token" = []), ("jwt" = [])))]
pub async fn payouts(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    q: web::Query<PayoutsQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page_request(&req, q.page, q.page_size)?;
    let (db, _) = billing_ports(&ctx);
    let p = oasis_billing::workflows::payouts::creator_transfers(&db, user.user_id, page)
        .await
        .map_err(api_error)?;
    let p = paginated(&req, page, p.map(PayoutOut::from))?;
    Ok(HttpResponse::Ok().json(p))
}
