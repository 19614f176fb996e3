//! Postgres adapter for the commissions domain: `commissions`, `commission_requests`, their
//! history and delivered files (migration 2026-12-02-120000_commissions), on Diesel's query
//! builder. Refund states are read from billing's `billing_refunds` (billing owns refunds).
use diesel::prelude::*;
use oasis_commissions::model::{
    ChangeRecord, Delivery, HistoryEntry, NewRequest, Offering, OfferingFields, OfferingView,
    RefundState, RefundView, Request, RequestStatus, RequestView, UserRef,
};
use oasis_commissions::CommissionStore;
use oasis_kernel::{Currency, Page, PageRequest, RepoError, Timestamp};
use std::collections::HashMap;

use crate::repo_error;
use crate::schema::{
    billing_orders, billing_refunds, commission_delivery_files, commission_request_history,
    commission_requests, commissions, media, users,
};

/// The commissions store over one connection (inside the caller's transaction).
pub struct PgCommissions<'a>(pub &'a mut PgConnection);

#[derive(Queryable, Selectable)]
#[diesel(table_name = commissions, check_for_backend(diesel::pg::Pg))]
struct OfferingRow {
    id: i64,
    creator_id: i64,
    title: String,
    description: String,
    price: i64,
    currency: String,
    delivery_days: i32,
    slots: i32,
    is_open: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
}

fn currency(s: &str) -> Result<Currency, RepoError> {
    s.parse()
        .map_err(|_| RepoError::Unavailable(format!("unknown currency {s:?}")))
}

fn status(s: &str) -> Result<RequestStatus, RepoError> {
    RequestStatus::parse(s)
        .ok_or_else(|| RepoError::Unavailable(format!("unknown commission request status {s:?}")))
}

impl TryFrom<OfferingRow> for Offering {
    type Error = RepoError;
    fn try_from(r: OfferingRow) -> Result<Self, RepoError> {
        Ok(Offering {
            id: r.id,
            creator_id: r.creator_id,
            title: r.title,
            description: r.description,
            price: r.price,
            currency: currency(&r.currency)?,
            delivery_days: r.delivery_days,
            slots: r.slots,
            is_open: r.is_open,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = commission_requests, check_for_backend(diesel::pg::Pg))]
struct RequestRow {
    id: i64,
    commission_id: i64,
    fan_id: i64,
    creator_id: i64,
    description: String,
    contact_details: String,
    mode_of_delivery: String,
    status: String,
    amount: i64,
    currency: String,
    razorpay_order_id: Option<String>,
    razorpay_payment_id: Option<String>,
    hold_until: Timestamp,
    paid_at: Option<Timestamp>,
    deliver_by: Option<Timestamp>,
    delivered_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl TryFrom<RequestRow> for Request {
    type Error = RepoError;
    fn try_from(r: RequestRow) -> Result<Self, RepoError> {
        Ok(Request {
            id: r.id,
            commission_id: r.commission_id,
            fan_id: r.fan_id,
            creator_id: r.creator_id,
            description: r.description,
            contact_details: r.contact_details,
            mode_of_delivery: r.mode_of_delivery,
            status: status(&r.status)?,
            amount: r.amount,
            currency: currency(&r.currency)?,
            razorpay_order_id: r.razorpay_order_id,
            razorpay_payment_id: r.razorpay_payment_id,
            hold_until: r.hold_until,
            paid_at: r.paid_at,
            deliver_by: r.deliver_by,
            delivered_at: r.delivered_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn strs(s: &[RequestStatus]) -> Vec<&'static str> {
    s.iter().map(|s| s.as_str()).collect()
}

fn active_statuses() -> Vec<&'static str> {
    RequestStatus::ALL
        .into_iter()
        .filter(|s| s.is_active())
        .map(RequestStatus::as_str)
        .collect()
}

/// Requests of `commission` holding a slot at `now`: `oasis_commissions::rules::holds_slot`.
fn slot_holders(
    c: &mut PgConnection,
    commission: &[i64],
    now: Timestamp,
) -> Result<HashMap<i64, i64>, RepoError> {
    use commission_requests::dsl as r;
    let rows: Vec<(i64, i64)> = r::commission_requests
        .filter(r::commission_id.eq_any(commission))
        .filter(
            r::status.eq_any(strs(&RequestStatus::OPEN)).or(r::status
                .eq(RequestStatus::AwaitingPayment.as_str())
                .and(r::hold_until.gt(now))),
        )
        .group_by(r::commission_id)
        .select((r::commission_id, diesel::dsl::count_star()))
        .load(c)
        .map_err(repo_error)?;
    Ok(rows.into_iter().collect())
}

impl CommissionStore for PgCommissions<'_> {
    fn is_creator(&mut self, user_id: i64) -> Result<bool, RepoError> {
        use users::dsl as u;
        Ok(u::users
            .filter(u::id.eq(user_id))
            .filter(u::is_active)
            .select(u::is_creator)
            .first::<bool>(self.0)
            .optional()
            .map_err(repo_error)?
            .unwrap_or(false))
    }

    fn insert_offering(
        &mut self,
        creator_id: i64,
        f: &OfferingFields,
        now: Timestamp,
    ) -> Result<Offering, RepoError> {
        use commissions::dsl as o;
        diesel::insert_into(o::commissions)
            .values((
                o::creator_id.eq(creator_id),
                o::title.eq(&f.title),
                o::description.eq(&f.description),
                o::price.eq(f.price),
                o::currency.eq(f.currency.code()),
                o::delivery_days.eq(f.delivery_days),
                o::slots.eq(f.slots),
                o::is_open.eq(f.is_open),
                o::created_at.eq(now),
                o::updated_at.eq(now),
            ))
            .returning(OfferingRow::as_returning())
            .get_result(self.0)
            .map_err(repo_error)?
            .try_into()
    }

    fn find_offering(&mut self, id: i64) -> Result<Option<Offering>, RepoError> {
        use commissions::dsl as o;
        o::commissions
            .filter(o::id.eq(id))
            .filter(o::deleted_at.is_null())
            .select(OfferingRow::as_select())
            .first(self.0)
            .optional()
            .map_err(repo_error)?
            .map(Offering::try_from)
            .transpose()
    }

    fn lock_offering(&mut self, id: i64) -> Result<Option<Offering>, RepoError> {
        use commissions::dsl as o;
        o::commissions
            .filter(o::id.eq(id))
            .filter(o::deleted_at.is_null())
            .select(OfferingRow::as_select())
            .for_update()
            .first(self.0)
            .optional()
            .map_err(repo_error)?
            .map(Offering::try_from)
            .transpose()
    }

    fn update_offering(
        &mut self,
        id: i64,
        f: &OfferingFields,
        now: Timestamp,
    ) -> Result<Offering, RepoError> {
        use commissions::dsl as o;
        diesel::update(o::commissions.filter(o::id.eq(id)))
            .set((
                o::title.eq(&f.title),
                o::description.eq(&f.description),
                o::price.eq(f.price),
                o::currency.eq(f.currency.code()),
                o::delivery_days.eq(f.delivery_days),
                o::slots.eq(f.slots),
                o::is_open.eq(f.is_open),
                o::updated_at.eq(now),
            ))
            .returning(OfferingRow::as_returning())
            .get_result(self.0)
            .map_err(repo_error)?
            .try_into()
    }

    fn delete_offering(&mut self, id: i64, now: Timestamp) -> Result<(), RepoError> {
        use commissions::dsl as o;
        diesel::update(o::commissions.filter(o::id.eq(id)))
            .set((
                o::deleted_at.eq(now),
                o::is_open.eq(false),
                o::updated_at.eq(now),
            ))
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn count_active_requests(&mut self, commission_id: i64) -> Result<i64, RepoError> {
        use commission_requests::dsl as r;
        r::commission_requests
            .filter(r::commission_id.eq(commission_id))
            .filter(r::status.eq_any(active_statuses()))
            .count()
            .get_result(self.0)
            .map_err(repo_error)
    }

    fn count_slot_holders(&mut self, commission_id: i64, now: Timestamp) -> Result<i64, RepoError> {
        Ok(slot_holders(self.0, &[commission_id], now)?
            .get(&commission_id)
            .copied()
            .unwrap_or(0))
    }

    fn insert_request(&mut self, n: &NewRequest) -> Result<Request, RepoError> {
        use commission_requests::dsl as r;
        let row: Request = diesel::insert_into(r::commission_requests)
            .values((
                r::commission_id.eq(n.commission_id),
                r::fan_id.eq(n.fan_id),
                r::creator_id.eq(n.creator_id),
                r::description.eq(&n.description),
                r::contact_details.eq(&n.contact_details),
                r::mode_of_delivery.eq(&n.mode_of_delivery),
                r::status.eq(RequestStatus::AwaitingPayment.as_str()),
                r::amount.eq(n.amount),
                r::currency.eq(n.currency.code()),
                r::hold_until.eq(n.hold_until),
                r::created_at.eq(n.created_at),
                r::updated_at.eq(n.created_at),
            ))
            .returning(RequestRow::as_returning())
            .get_result(self.0)
            .map_err(repo_error)?
            .try_into()?;
        history(
            self.0,
            row.id,
            RequestStatus::AwaitingPayment,
            Some(n.fan_id),
            None,
            n.created_at,
        )?;
        Ok(row)
    }

    fn set_request_order(&mut self, id: i64, order_id: &str) -> Result<(), RepoError> {
        use commission_requests::dsl as r;
        diesel::update(r::commission_requests.filter(r::id.eq(id)))
            .set(r::razorpay_order_id.eq(order_id))
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn delete_request(&mut self, id: i64) -> Result<(), RepoError> {
        use commission_requests::dsl as r;
        diesel::delete(r::commission_requests.filter(r::id.eq(id)))
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn lock_request(&mut self, id: i64) -> Result<Option<Request>, RepoError> {
        use commission_requests::dsl as r;
        r::commission_requests
            .filter(r::id.eq(id))
            .select(RequestRow::as_select())
            .for_update()
            .first(self.0)
            .optional()
            .map_err(repo_error)?
            .map(Request::try_from)
            .transpose()
    }

    fn lock_request_by_order(&mut self, order_id: &str) -> Result<Option<Request>, RepoError> {
        use commission_requests::dsl as r;
        r::commission_requests
            .filter(r::razorpay_order_id.eq(order_id))
            .select(RequestRow::as_select())
            .for_update()
            .first(self.0)
            .optional()
            .map_err(repo_error)?
            .map(Request::try_from)
            .transpose()
    }

    fn save_change(
        &mut self,
        id: i64,
        to: RequestStatus,
        by: Option<i64>,
        rec: &ChangeRecord,
        now: Timestamp,
    ) -> Result<Request, RepoError> {
        use commission_requests::dsl as r;
        let target = r::commission_requests.filter(r::id.eq(id));
        // One statement with the payment: the table's CHECK wants a paid status to have it.
        match &rec.paid {
            Some(p) => diesel::update(target)
                .set((
                    r::status.eq(to.as_str()),
                    r::updated_at.eq(now),
                    r::razorpay_payment_id.eq(&p.payment_id),
                    r::paid_at.eq(p.paid_at),
                    r::deliver_by.eq(p.deliver_by),
                ))
                .execute(self.0),
            None => diesel::update(target)
                .set((r::status.eq(to.as_str()), r::updated_at.eq(now)))
                .execute(self.0),
        }
        .map_err(repo_error)?;
        if let Some(d) = &rec.delivery {
            diesel::update(target)
                .set((r::delivered_at.eq(now), r::delivery_message.eq(&d.message)))
                .execute(self.0)
                .map_err(repo_error)?;
            use commission_delivery_files::dsl as f;
            let rows: Vec<_> = d
                .attachments
                .iter()
                .map(|m| (f::request_id.eq(id), f::media_id.eq(*m)))
                .collect();
            diesel::insert_into(f::commission_delivery_files)
                .values(rows)
                .on_conflict_do_nothing()
                .execute(self.0)
                .map_err(repo_error)?;
        }
        history(self.0, id, to, by, rec.message.as_deref(), now)?;
        target
            .select(RequestRow::as_select())
            .first(self.0)
            .map_err(repo_error)?
            .try_into()
    }

    fn media_owned_by(&mut self, owner: i64, ids: &[i64]) -> Result<usize, RepoError> {
        if ids.is_empty() {
            return Ok(0);
        }
        use media::dsl as m;
        let n: i64 = m::media
            .filter(m::id.eq_any(ids))
            .filter(m::owner_id.eq(owner))
            .count()
            .get_result(self.0)
            .map_err(repo_error)?;
        Ok(n as usize)
    }

    fn due_expiries(&mut self, now: Timestamp, limit: i64) -> Result<Vec<i64>, RepoError> {
        use commission_requests::dsl as r;
        r::commission_requests
            .filter(r::status.eq(RequestStatus::AwaitingPayment.as_str()))
            .filter(r::hold_until.le(now))
            .order(r::hold_until)
            .limit(limit)
            .select(r::id)
            .for_update()
            .skip_locked()
            .load(self.0)
            .map_err(repo_error)
    }

    fn due_completions(
        &mut self,
        delivered_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<i64>, RepoError> {
        use commission_requests::dsl as r;
        r::commission_requests
            .filter(r::status.eq(RequestStatus::Delivered.as_str()))
            .filter(r::delivered_at.le(delivered_before))
            .order(r::delivered_at)
            .limit(limit)
            .select(r::id)
            .for_update()
            .skip_locked()
            .load(self.0)
            .map_err(repo_error)
    }
}

fn history(
    c: &mut PgConnection,
    request: i64,
    to: RequestStatus,
    by: Option<i64>,
    message: Option<&str>,
    at: Timestamp,
) -> Result<(), RepoError> {
    use commission_request_history::dsl as h;
    diesel::insert_into(h::commission_request_history)
        .values((
            h::request_id.eq(request),
            h::status.eq(to.as_str()),
            h::by_user.eq(by),
            h::message.eq(message),
            h::at.eq(at),
        ))
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads

fn user_refs(c: &mut PgConnection, ids: &[i64]) -> Result<HashMap<i64, UserRef>, RepoError> {
    use users::dsl as u;
    let rows: Vec<(i64, String, Option<String>)> = u::users
        .filter(u::id.eq_any(ids))
        .select((u::id, u::username, u::profile_pic))
        .load(c)
        .map_err(repo_error)?;
    Ok(rows
        .into_iter()
        .map(|(id, username, profile_pic)| {
            (
                id,
                UserRef {
                    id,
                    username,
                    profile_pic,
                },
            )
        })
        .collect())
}

fn unknown_user(id: i64) -> UserRef {
    UserRef {
        id,
        username: String::new(),
        profile_pic: None,
    }
}

fn offering_views(
    c: &mut PgConnection,
    rows: Vec<OfferingRow>,
    now: Timestamp,
) -> Result<Vec<OfferingView>, RepoError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let creators: Vec<i64> = rows.iter().map(|r| r.creator_id).collect();
    let held = slot_holders(c, &ids, now)?;
    let users = user_refs(c, &creators)?;
    rows.into_iter()
        .map(|r| {
            let offering = Offering::try_from(r)?;
            Ok(OfferingView {
                open_orders: held.get(&offering.id).copied().unwrap_or(0),
                creator: users
                    .get(&offering.creator_id)
                    .cloned()
                    .unwrap_or_else(|| unknown_user(offering.creator_id)),
                offering,
            })
        })
        .collect()
}

/// One offering with its counts (not deleted).
pub fn offering_view(
    c: &mut PgConnection,
    offering: Offering,
    now: Timestamp,
) -> Result<OfferingView, RepoError> {
    let open_orders = slot_holders(c, &[offering.id], now)?
        .get(&offering.id)
        .copied()
        .unwrap_or(0);
    let creator = user_refs(c, &[offering.creator_id])?
        .remove(&offering.creator_id)
        .unwrap_or_else(|| unknown_user(offering.creator_id));
    Ok(OfferingView {
        offering,
        open_orders,
        creator,
    })
}

/// Offerings, newest first: a creator's (`creator`), or everyone's; only open ones unless
/// `include_closed` (the owner's own list).
pub fn list_offerings(
    c: &mut PgConnection,
    creator: Option<i64>,
    include_closed: bool,
    page: PageRequest,
    now: Timestamp,
) -> Result<Page<OfferingView>, RepoError> {
    use commissions::dsl as o;
    let filtered = || {
        let mut q = o::commissions.filter(o::deleted_at.is_null()).into_boxed();
        if let Some(cr) = creator {
            q = q.filter(o::creator_id.eq(cr));
        }
        if !include_closed {
            q = q.filter(o::is_open);
        }
        q
    };
    let count: i64 = filtered().count().get_result(c).map_err(repo_error)?;
    let rows: Vec<OfferingRow> = filtered()
        .order(o::id.desc())
        .offset(page.offset())
        .limit(page.limit())
        .select(OfferingRow::as_select())
        .load(c)
        .map_err(repo_error)?;
    Ok(Page {
        count,
        results: offering_views(c, rows, now)?,
    })
}

/// Whose requests a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestsOf {
    /// Received by this creator.
    Creator(i64),
    /// Made by this fan.
    Fan(i64),
}

/// Requests, newest first: with `status` when given; otherwise a fan's every request, a
/// creator's received ones from `ordered` on (paid at some point).
pub fn list_requests(
    c: &mut PgConnection,
    of: RequestsOf,
    status: Option<RequestStatus>,
    page: PageRequest,
) -> Result<Page<RequestView>, RepoError> {
    use commission_requests::dsl as r;
    let filtered = || {
        let mut q = r::commission_requests.into_boxed();
        q = match of {
            RequestsOf::Creator(u) => q.filter(r::creator_id.eq(u)),
            RequestsOf::Fan(u) => q.filter(r::fan_id.eq(u)),
        };
        match (status, of) {
            (Some(s), _) => q.filter(r::status.eq(s.as_str())),
            (None, RequestsOf::Creator(_)) => q.filter(r::paid_at.is_not_null()),
            (None, RequestsOf::Fan(_)) => q,
        }
    };
    let count: i64 = filtered().count().get_result(c).map_err(repo_error)?;
    let rows: Vec<RequestRow> = filtered()
        .order(r::id.desc())
        .offset(page.offset())
        .limit(page.limit())
        .select(RequestRow::as_select())
        .load(c)
        .map_err(repo_error)?;
    let requests = rows
        .into_iter()
        .map(Request::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        count,
        results: request_views(c, requests)?,
    })
}

/// One request with everything its parties see (`None` when it does not exist).
pub fn request_view(c: &mut PgConnection, id: i64) -> Result<Option<RequestView>, RepoError> {
    use commission_requests::dsl as r;
    let Some(row) = r::commission_requests
        .filter(r::id.eq(id))
        .select(RequestRow::as_select())
        .first(c)
        .optional()
        .map_err(repo_error)?
    else {
        return Ok(None);
    };
    Ok(request_views(c, vec![row.try_into()?])?.pop())
}

/// (request, status, by, message, at)
type HistoryRow = (i64, String, Option<i64>, Option<String>, Timestamp);

/// Renders requests in a fixed number of queries (titles, users, history, files, refunds).
pub fn request_views(
    c: &mut PgConnection,
    requests: Vec<Request>,
) -> Result<Vec<RequestView>, RepoError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = requests.iter().map(|r| r.id).collect();
    let offering_ids: Vec<i64> = requests.iter().map(|r| r.commission_id).collect();
    let titles: HashMap<i64, String> = {
        use commissions::dsl as o;
        o::commissions
            .filter(o::id.eq_any(&offering_ids))
            .select((o::id, o::title))
            .load::<(i64, String)>(c)
            .map_err(repo_error)?
            .into_iter()
            .collect()
    };
    let people: Vec<i64> = requests
        .iter()
        .flat_map(|r| [r.fan_id, r.creator_id])
        .collect();
    let users = user_refs(c, &people)?;
    let mut histories: HashMap<i64, Vec<HistoryEntry>> = HashMap::new();
    {
        use commission_request_history::dsl as h;
        let rows: Vec<HistoryRow> = h::commission_request_history
            .filter(h::request_id.eq_any(&ids))
            .order((h::request_id, h::id))
            .select((h::request_id, h::status, h::by_user, h::message, h::at))
            .load(c)
            .map_err(repo_error)?;
        for (rid, st, by, message, at) in rows {
            histories.entry(rid).or_default().push(HistoryEntry {
                status: status(&st)?,
                at,
                by,
                message,
            });
        }
    }
    let messages: HashMap<i64, Option<String>> = {
        use commission_requests::dsl as r;
        r::commission_requests
            .filter(r::id.eq_any(&ids))
            .select((r::id, r::delivery_message))
            .load::<(i64, Option<String>)>(c)
            .map_err(repo_error)?
            .into_iter()
            .collect()
    };
    let mut files: HashMap<i64, Vec<i64>> = HashMap::new();
    {
        use commission_delivery_files::dsl as f;
        let rows: Vec<(i64, i64)> = f::commission_delivery_files
            .filter(f::request_id.eq_any(&ids))
            .order((f::request_id, f::media_id))
            .select((f::request_id, f::media_id))
            .load(c)
            .map_err(repo_error)?;
        for (rid, m) in rows {
            files.entry(rid).or_default().push(m);
        }
    }
    let orders: Vec<String> = requests
        .iter()
        .filter_map(|r| r.razorpay_order_id.clone())
        .collect();
    let refunds = refunds_of(c, &orders)?;
    Ok(requests
        .into_iter()
        .map(|request| {
            let delivered = request.delivered_at.is_some();
            let user = |id: i64| users.get(&id).cloned().unwrap_or_else(|| unknown_user(id));
            RequestView {
                title: titles
                    .get(&request.commission_id)
                    .cloned()
                    .unwrap_or_default(),
                fan: user(request.fan_id),
                creator: user(request.creator_id),
                history: histories.remove(&request.id).unwrap_or_default(),
                delivery: delivered.then(|| Delivery {
                    message: messages
                        .get(&request.id)
                        .cloned()
                        .flatten()
                        .unwrap_or_default(),
                    attachments: files.remove(&request.id).unwrap_or_default(),
                }),
                refund: request
                    .razorpay_order_id
                    .as_ref()
                    .and_then(|o| refunds.get(o).cloned()),
                request,
            }
        })
        .collect())
}

/// Billing's refunds of these orders' payments, as the parties see them (amounts summed; the
/// state is the least settled one).
fn refunds_of(
    c: &mut PgConnection,
    order_ids: &[String],
) -> Result<HashMap<String, RefundView>, RepoError> {
    if order_ids.is_empty() {
        return Ok(HashMap::new());
    }
    use billing_orders::dsl as o;
    use billing_refunds::dsl as b;
    use oasis_billing::ports::RefundStatus;
    let rows: Vec<(String, i64, String, Timestamp, Option<Timestamp>)> = b::billing_refunds
        .inner_join(o::billing_orders)
        .filter(o::razorpay_order_id.eq_any(order_ids))
        .order(b::id)
        .select((
            o::razorpay_order_id,
            b::amount,
            b::status,
            b::created_at,
            b::sent_at,
        ))
        .load(c)
        .map_err(repo_error)?;
    let mut out: HashMap<String, RefundView> = HashMap::new();
    for (oid, amount, st, created, sent) in rows {
        let state = match RefundStatus::parse(&st)? {
            RefundStatus::Requested => RefundState::Pending,
            RefundStatus::Sent => RefundState::Processed,
            RefundStatus::Failed => RefundState::Failed,
        };
        let at = sent.unwrap_or(created);
        out.entry(oid)
            .and_modify(|v| {
                v.amount += amount;
                v.at = v.at.max(at);
                if state != RefundState::Processed {
                    v.state = state;
                }
            })
            .or_insert(RefundView { amount, state, at });
    }
    Ok(out)
}

/// The users who may read a media row because it was delivered to them through a commission
/// request (its fan and its creator).
pub fn delivery_parties(c: &mut PgConnection, media_id: i64) -> Result<Vec<i64>, RepoError> {
    use commission_delivery_files::dsl as f;
    use commission_requests::dsl as r;
    let rows: Vec<(i64, i64)> = f::commission_delivery_files
        .inner_join(r::commission_requests)
        .filter(f::media_id.eq(media_id))
        .select((r::fan_id, r::creator_id))
        .load(c)
        .map_err(repo_error)?;
    Ok(rows.into_iter().flat_map(|(a, b)| [a, b]).collect())
}

/// The Razorpay order of a request, if made.
pub fn order_of_request(c: &mut PgConnection, id: i64) -> Result<Option<String>, RepoError> {
    use commission_requests::dsl as r;
    Ok(r::commission_requests
        .filter(r::id.eq(id))
        .select(r::razorpay_order_id)
        .first::<Option<String>>(c)
        .optional()
        .map_err(repo_error)?
        .flatten())
}
