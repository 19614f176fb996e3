//! The commissions services: each is one step inside the caller's transaction, over a
//! [`CommissionStore`].
use crate::error::CommissionError;
use crate::model::{
    Actor, ChangeRecord, Changed, Delivery, NewRequest, Offering, OfferingInput, Paid, RefundDue,
    Request, RequestInput, RequestStatus, StatusChange,
};
use crate::ports::CommissionStore;
use crate::rules;
use oasis_kernel::Timestamp;

type Store<'a> = dyn CommissionStore + 'a;

/// Creates an offering (creators only).
pub fn create_offering(
    s: &mut Store<'_>,
    caller: i64,
    input: &OfferingInput,
    now: Timestamp,
) -> Result<Offering, CommissionError> {
    if !s.is_creator(caller)? {
        return Err(CommissionError::NotCreator);
    }
    let fields = rules::validate_offering(input, None)?;
    Ok(s.insert_offering(caller, &fields, now)?)
}

/// An offering as `caller` may see it: open ones to anyone, the owner's any of theirs; a
/// closed (or deleted) offering is not found for others.
pub fn visible_offering(
    s: &mut Store<'_>,
    caller: Option<i64>,
    id: i64,
) -> Result<Offering, CommissionError> {
    match s.find_offering(id)? {
        Some(o) if o.is_open || caller == Some(o.creator_id) => Ok(o),
        _ => Err(CommissionError::NotFound),
    }
}

/// The caller's own offering, locked (403 for others who may see it, 404 otherwise).
fn own_offering(s: &mut Store<'_>, caller: i64, id: i64) -> Result<Offering, CommissionError> {
    match s.lock_offering(id)? {
        Some(o) if o.creator_id == caller => Ok(o),
        Some(o) if o.is_open => Err(CommissionError::Forbidden(
            "Only the creator of this commission may change it.".into(),
        )),
        _ => Err(CommissionError::NotFound),
    }
}

/// Changes the fields given (the owner only). A new price applies to new requests only.
pub fn update_offering(
    s: &mut Store<'_>,
    caller: i64,
    id: i64,
    input: &OfferingInput,
    now: Timestamp,
) -> Result<Offering, CommissionError> {
    let current = own_offering(s, caller, id)?;
    let fields = rules::validate_offering(input, Some(&current))?;
    Ok(s.update_offering(id, &fields, now)?)
}

/// Whether the owner may delete it now (404 for anyone else): not while any request of it is
/// active.
pub fn deletable(s: &mut Store<'_>, caller: i64, id: i64) -> Result<bool, CommissionError> {
    match s.find_offering(id)? {
        Some(o) if o.creator_id == caller => Ok(s.count_active_requests(id)? == 0),
        _ => Err(CommissionError::NotFound),
    }
}

/// Deletes an offering (the owner only) that has no active request; its past requests stay
/// readable.
pub fn delete_offering(
    s: &mut Store<'_>,
    caller: i64,
    id: i64,
    now: Timestamp,
) -> Result<(), CommissionError> {
    own_offering(s, caller, id)?;
    let active = s.count_active_requests(id)?;
    if active > 0 {
        return Err(CommissionError::conflict(
            "commission_in_use",
            format!(
                "This commission has {active} active request(s); close it (is_open: false) and finish them first."
            ),
        ));
    }
    s.delete_offering(id, now)?;
    Ok(())
}

/// Reserves a slot for a fan's request: the offering is locked, so of two fans racing for its
/// last slot exactly one gets it. The request is `awaiting_payment` and holds the slot until
/// `now + hold_secs`; the caller then makes its Razorpay order (outside the transaction) and
/// attaches it with [`attach_order`], or drops the request with [`abandon_request`].
pub fn reserve_request(
    s: &mut Store<'_>,
    fan: i64,
    input: &RequestInput,
    now: Timestamp,
    hold_secs: i64,
) -> Result<(Request, Offering), CommissionError> {
    rules::validate_request(input)?;
    let Some(offering) = s.lock_offering(input.commission_id)? else {
        return Err(CommissionError::invalid(
            "commissionID",
            "Commission not found.",
        ));
    };
    if !offering.is_open && offering.creator_id != fan {
        // Closed offerings are not shown to others; say so without more.
        return Err(CommissionError::conflict(
            "commission_closed",
            "This commission is not taking requests.",
        ));
    }
    let held = s.count_slot_holders(offering.id, now)?;
    if let Some(refusal) = rules::refuse_order(&offering, fan, input.currency.as_deref(), held) {
        return Err(refusal);
    }
    let request = s.insert_request(&NewRequest {
        commission_id: offering.id,
        fan_id: fan,
        creator_id: offering.creator_id,
        description: input.description.clone(),
        contact_details: input.contact_details.clone(),
        mode_of_delivery: input.mode_of_delivery.clone(),
        amount: offering.price,
        currency: offering.currency,
        hold_until: now + chrono::Duration::seconds(hold_secs),
        created_at: now,
    })?;
    Ok((request, offering))
}

/// Records the Razorpay order of a reserved request.
pub fn attach_order(s: &mut Store<'_>, id: i64, order_id: &str) -> Result<(), CommissionError> {
    Ok(s.set_request_order(id, order_id)?)
}

/// Drops a reserved request whose order could not be made (frees its slot at once).
pub fn abandon_request(s: &mut Store<'_>, id: i64) -> Result<(), CommissionError> {
    Ok(s.delete_request(id)?)
}

/// What a recorded payment of a commission order did to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentApplied {
    /// The request is now `ordered` (the creator is told).
    Ordered(Box<Changed>),
    /// Already applied (a repeat of the webhook, callback or reconciliation).
    AlreadyApplied,
    /// The payment cannot be honoured (its request expired and no slot is free, it was
    /// cancelled, or it is a second payment of one request): refunded in full.
    Refund(RefundDue),
    /// No request has this order (an order of another deployment or of the seed).
    UnknownOrder,
}

/// Applies the payment of a request's order, exactly once whichever path comes first: an
/// unpaid request becomes `ordered` (its `deliver_by` counted from the payment); a payment
/// arriving after its request expired is honoured if a slot is free now, and otherwise
/// refunded; money is never silently kept.
pub fn record_payment(
    s: &mut Store<'_>,
    order_id: &str,
    payment_id: &str,
    amount: i64,
    paid_at: Timestamp,
    now: Timestamp,
) -> Result<PaymentApplied, CommissionError> {
    let Some(req) = s.lock_request_by_order(order_id)? else {
        return Ok(PaymentApplied::UnknownOrder);
    };
    let refund = |why: &str| {
        PaymentApplied::Refund(RefundDue {
            request_id: req.id,
            payment_id: payment_id.to_owned(),
            amount,
            currency: req.currency,
            fan_id: req.fan_id,
            creator_id: req.creator_id,
            reason: why.to_owned(),
        })
    };
    if let Some(paid) = &req.razorpay_payment_id {
        return Ok(if paid == payment_id {
            PaymentApplied::AlreadyApplied
        } else {
            refund("a second payment of a commission request that was already paid")
        });
    }
    match req.status {
        RequestStatus::AwaitingPayment => {}
        RequestStatus::Expired => {
            let Some(offering) = s.lock_offering(req.commission_id)? else {
                return Ok(refund(
                    "paid after its request expired; the commission was deleted",
                ));
            };
            let held = s.count_slot_holders(offering.id, now)?;
            if held >= i64::from(offering.slots) {
                return Ok(refund(
                    "paid after its request expired, and no slot is free",
                ));
            }
        }
        _ => return Ok(refund("paid after the request was cancelled")),
    }
    let delivery_days = s
        .find_offering(req.commission_id)?
        .map(|o| o.delivery_days)
        .unwrap_or(rules::DELIVERY_DAYS.end().to_owned() as i32);
    let from = req.status;
    let record = ChangeRecord {
        paid: Some(Paid {
            payment_id: payment_id.to_owned(),
            paid_at,
            deliver_by: rules::deliver_by(paid_at, delivery_days),
        }),
        ..Default::default()
    };
    let request = s.save_change(req.id, RequestStatus::Ordered, None, &record, now)?;
    Ok(PaymentApplied::Ordered(Box::new(Changed {
        request,
        from,
        refund: None,
    })))
}

/// One party's change of a request's status (`PATCH`): the caller must be its fan or its
/// creator (404 for anyone else: a third party learns nothing), the move theirs (403) and
/// allowed now (409). A delivery's attachments must be the creator's uploads. A rejection or
/// a paid cancellation owes a full refund, returned for the caller to record in the same
/// transaction.
pub fn change_status(
    s: &mut Store<'_>,
    caller: i64,
    id: i64,
    change: &StatusChange,
    now: Timestamp,
    autocomplete_days: i64,
) -> Result<Changed, CommissionError> {
    let req = s.lock_request(id)?.ok_or(CommissionError::NotFound)?;
    let actor = if caller == req.creator_id {
        Actor::Creator(caller)
    } else if caller == req.fan_id {
        Actor::Fan(caller)
    } else {
        return Err(CommissionError::NotFound);
    };
    if let Some(m) = &change.message {
        if m.chars().count() > rules::MESSAGE_MAX {
            return Err(CommissionError::invalid(
                "message",
                format!(
                    "Ensure this field has no more than {} characters.",
                    rules::MESSAGE_MAX
                ),
            ));
        }
    }
    if !change.attachments.is_empty() && change.to != RequestStatus::Delivered {
        return Err(CommissionError::invalid(
            "attachments",
            "Attachments go with a delivery only.",
        ));
    }
    apply_change(s, req, change, actor, now, autocomplete_days)
}

fn apply_change(
    s: &mut Store<'_>,
    req: Request,
    change: &StatusChange,
    actor: Actor,
    now: Timestamp,
    autocomplete_days: i64,
) -> Result<Changed, CommissionError> {
    let verdict = rules::decide(
        &req,
        change.to,
        actor,
        change.message.as_deref(),
        now,
        autocomplete_days,
    )?;
    let mut record = ChangeRecord {
        message: change.message.clone().filter(|m| !m.trim().is_empty()),
        ..Default::default()
    };
    if change.to == RequestStatus::Delivered {
        let mut files = change.attachments.clone();
        files.sort_unstable();
        files.dedup();
        if files.len() > rules::ATTACHMENTS_MAX {
            return Err(CommissionError::invalid(
                "attachments",
                format!("At most {} files per delivery.", rules::ATTACHMENTS_MAX),
            ));
        }
        if s.media_owned_by(req.creator_id, &files)? != files.len() {
            return Err(CommissionError::invalid(
                "attachments",
                "Attach only files you uploaded (/content/api/media/).",
            ));
        }
        record.delivery = Some(Delivery {
            message: change.message.clone().unwrap_or_default(),
            attachments: files,
        });
    }
    let refund = if verdict.refund {
        let Some(payment_id) = req.razorpay_payment_id.clone() else {
            return Err(CommissionError::conflict(
                "not_paid",
                "This request has no recorded payment to refund.",
            ));
        };
        Some(RefundDue {
            request_id: req.id,
            payment_id,
            amount: req.amount,
            currency: req.currency,
            fan_id: req.fan_id,
            creator_id: req.creator_id,
            reason: match change.to {
                RequestStatus::Rejected => "the creator rejected the commission request".into(),
                _ => "the fan cancelled the commission request".into(),
            },
        })
    } else {
        None
    };
    let from = req.status;
    let request = s.save_change(req.id, change.to, actor.user_id(), &record, now)?;
    Ok(Changed {
        request,
        from,
        refund,
    })
}

/// A system transition (expiry of an unpaid request, autocompletion of a delivery) of one
/// request: `None` when it no longer applies (paid meanwhile, completed by the fan).
pub fn system_change(
    s: &mut Store<'_>,
    id: i64,
    to: RequestStatus,
    now: Timestamp,
    autocomplete_days: i64,
) -> Result<Option<Changed>, CommissionError> {
    let Some(req) = s.lock_request(id)? else {
        return Ok(None);
    };
    if to == RequestStatus::Expired && rules::holds_slot(req.status, req.hold_until, now) {
        return Ok(None);
    }
    let change = StatusChange {
        to,
        message: None,
        attachments: Vec::new(),
    };
    match apply_change(s, req, &change, Actor::System, now, autocomplete_days) {
        Ok(c) => Ok(Some(c)),
        Err(CommissionError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
