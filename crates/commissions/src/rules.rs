//! The rules: validation of offerings and requests, the lifecycle's transitions (who may make
//! which, and what it owes), slots, deadlines and autocompletion.
use crate::error::CommissionError;
use crate::model::{
    Actor, Offering, OfferingFields, OfferingInput, Request, RequestInput, RequestStatus,
};
use oasis_kernel::{Currency, FieldErrors, Timestamp};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 5_000;
pub const DELIVERY_DAYS: std::ops::RangeInclusive<i64> = 1..=365;
pub const SLOTS: std::ops::RangeInclusive<i64> = 1..=1000;
/// A request's description and contact details.
pub const REQUEST_TEXT_MAX: usize = 5_000;
pub const MODE_OF_DELIVERY_MAX: usize = 100;
/// A delivery note or a rejection/cancellation reason.
pub const MESSAGE_MAX: usize = 5_000;
/// Files one delivery may carry.
pub const ATTACHMENTS_MAX: usize = 20;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Validates an offering's fields: all of them on create (`current` = `None`), the changed
/// ones over `current` on update.
pub fn validate_offering(
    input: &OfferingInput,
    current: Option<&Offering>,
) -> Result<OfferingFields, FieldErrors> {
    let mut e = FieldErrors::new();
    let required = "This field is required.";
    let title = match (&input.title, current) {
        (Some(t), _) => t.trim().to_owned(),
        (None, Some(c)) => c.title.clone(),
        (None, None) => {
            e.add("title", required);
            String::new()
        }
    };
    if input.title.is_some() && (title.is_empty() || chars(&title) > TITLE_MAX) {
        e.add(
            "title",
            format!("Ensure this field has 1 to {TITLE_MAX} characters."),
        );
    }
    let description = input
        .description
        .clone()
        .or_else(|| current.map(|c| c.description.clone()))
        .unwrap_or_default();
    if chars(&description) > DESCRIPTION_MAX {
        e.add(
            "description",
            format!("Ensure this field has no more than {DESCRIPTION_MAX} characters."),
        );
    }
    let currency = match (&input.currency, current) {
        (Some(c), _) => match c.parse::<Currency>() {
            Ok(c) => Some(c),
            Err(err) => {
                e.add("currency", err.to_string());
                None
            }
        },
        (None, Some(c)) => Some(c.currency),
        (None, None) => {
            e.add("currency", required);
            None
        }
    };
    let price = match (input.price, current) {
        (Some(p), _) => Some(p),
        (None, Some(c)) => Some(c.price),
        (None, None) => {
            e.add("price", required);
            None
        }
    };
    if let (Some(p), Some(cur)) = (price, currency) {
        if p < cur.min_charge() || p > cur.max_charge() {
            e.add(
                "price",
                format!(
                    "Ensure the price is between {} and {} (minor units of {}).",
                    cur.min_charge(),
                    cur.max_charge(),
                    cur.code()
                ),
            );
        }
    }
    let mut ranged =
        |field: &str, v: Option<i64>, cur: Option<i32>, r: &std::ops::RangeInclusive<i64>| match v
            .or(cur.map(i64::from))
        {
            Some(v) if r.contains(&v) => v as i32,
            Some(_) => {
                e.add(
                    field,
                    format!(
                        "Ensure this value is between {} and {}.",
                        r.start(),
                        r.end()
                    ),
                );
                0
            }
            None => {
                e.add(field, required);
                0
            }
        };
    let delivery_days = ranged(
        "delivery_days",
        input.delivery_days,
        current.map(|c| c.delivery_days),
        &DELIVERY_DAYS,
    );
    let slots = ranged("slots", input.slots, current.map(|c| c.slots), &SLOTS);
    let is_open = input.is_open.or(current.map(|c| c.is_open)).unwrap_or(true);
    e.into_result()?;
    Ok(OfferingFields {
        title,
        description,
        price: price.unwrap_or_default(),
        currency: currency.unwrap_or(Currency::Inr),
        delivery_days,
        slots,
        is_open,
    })
}

/// Validates a request's text fields.
pub fn validate_request(input: &RequestInput) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::new();
    if input.description.trim().is_empty() {
        e.add("description", "This field may not be blank.");
    }
    for (field, v) in [
        ("description", &input.description),
        ("contactDetails", &input.contact_details),
    ] {
        if chars(v) > REQUEST_TEXT_MAX {
            e.add(
                field,
                format!("Ensure this field has no more than {REQUEST_TEXT_MAX} characters."),
            );
        }
    }
    if chars(&input.mode_of_delivery) > MODE_OF_DELIVERY_MAX {
        e.add(
            "mode_of_delivery",
            format!("Ensure this field has no more than {MODE_OF_DELIVERY_MAX} characters."),
        );
    }
    e.into_result()
}

/// Why a fan may not order from this offering now (`None`: they may).
pub fn refuse_order(
    offering: &Offering,
    fan: i64,
    currency: Option<&str>,
    held_slots: i64,
) -> Option<CommissionError> {
    if offering.creator_id == fan {
        return Some(CommissionError::conflict(
            "own_commission",
            "You cannot order your own commission.",
        ));
    }
    if let Some(cur) = currency.map(str::trim).filter(|c| !c.is_empty()) {
        if cur.parse::<Currency>().ok() != Some(offering.currency) {
            return Some(CommissionError::invalid(
                "currency",
                format!("This commission is priced in {}.", offering.currency.code()),
            ));
        }
    }
    if !offering.is_open {
        return Some(CommissionError::conflict(
            "commission_closed",
            "This commission is not taking requests.",
        ));
    }
    if held_slots >= i64::from(offering.slots) {
        return Some(CommissionError::conflict(
            "no_free_slot",
            "Every slot of this commission is taken; try again later.",
        ));
    }
    None
}

/// Does a request hold a slot of its offering at `now`? Paid work always; an unpaid request
/// during its payment hold. (The Postgres adapter counts with the same predicate.)
pub fn holds_slot(status: RequestStatus, hold_until: Timestamp, now: Timestamp) -> bool {
    status.is_paid_work() || (status == RequestStatus::AwaitingPayment && hold_until > now)
}

/// When a request paid at `paid_at` must be delivered.
pub fn deliver_by(paid_at: Timestamp, delivery_days: i32) -> Timestamp {
    paid_at + chrono::Duration::days(i64::from(delivery_days))
}

/// When a request delivered at `delivered_at` completes by itself.
pub fn autocomplete_at(delivered_at: Timestamp, autocomplete_days: i64) -> Timestamp {
    delivered_at + chrono::Duration::days(autocomplete_days)
}

/// Who may make a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Fan,
    Creator,
    System,
    FanOrSystem,
}

/// The lifecycle: for each allowed (from, to), who may make it.
fn party(from: RequestStatus, to: RequestStatus) -> Option<Party> {
    use RequestStatus::*;
    Some(match (from, to) {
        (AwaitingPayment, Ordered) | (Expired, Ordered) | (AwaitingPayment, Expired) => {
            Party::System
        }
        (AwaitingPayment, Cancelled) | (Ordered, Cancelled) => Party::Fan,
        (Accepted, Cancelled) | (InProgress, Cancelled) => Party::Fan,
        (Ordered, Accepted) | (Ordered, Rejected) => Party::Creator,
        (Accepted, InProgress) | (InProgress, Delivered) => Party::Creator,
        (Delivered, Completed) => Party::FanOrSystem,
        _ => return None,
    })
}

/// What an allowed transition owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The fan's payment is refunded in full.
    pub refund: bool,
}

/// Decides whether `actor` may move `req` to `to` at `now`: 403 when the actor is the other
/// party of an allowed move, 409 with the reason when the state does not allow it.
/// `autocomplete_days` says when the system may complete a delivered request.
pub fn decide(
    req: &Request,
    to: RequestStatus,
    actor: Actor,
    message: Option<&str>,
    now: Timestamp,
    autocomplete_days: i64,
) -> Result<Verdict, CommissionError> {
    use RequestStatus::*;
    let from = req.status;
    let Some(who) = party(from, to) else {
        return Err(not_now(from, to));
    };
    let allowed = matches!(
        (who, actor),
        (Party::Fan, Actor::Fan(_))
            | (Party::Creator, Actor::Creator(_))
            | (Party::System, Actor::System)
            | (Party::FanOrSystem, Actor::Fan(_) | Actor::System)
    );
    if !allowed {
        return Err(match (who, actor) {
            (Party::System, _) => not_now(from, to),
            (Party::Creator, _) => CommissionError::Forbidden(format!(
                "Only the creator may mark a request {}.",
                to.as_str()
            )),
            _ => CommissionError::Forbidden(format!(
                "Only the fan may mark a request {}.",
                to.as_str()
            )),
        });
    }
    let has_message = message.is_some_and(|m| !m.trim().is_empty());
    match (from, to) {
        (Accepted | InProgress, Cancelled) => {
            let late = req.deliver_by.is_some_and(|d| now > d);
            if !late {
                return Err(CommissionError::conflict(
                    "not_overdue",
                    "An accepted request can be cancelled only once its delivery date has passed.",
                ));
            }
        }
        (Ordered, Rejected) if !has_message => {
            return Err(CommissionError::invalid(
                "message",
                "Give the fan a reason for the rejection.",
            ));
        }
        (InProgress, Delivered) if !has_message => {
            return Err(CommissionError::invalid(
                "message",
                "A delivery needs a message for the fan.",
            ));
        }
        (Delivered, Completed) if actor == Actor::System => {
            let due = req
                .delivered_at
                .is_some_and(|d| autocomplete_at(d, autocomplete_days) <= now);
            if !due {
                return Err(CommissionError::conflict(
                    "not_due",
                    "This delivery is not due to complete yet.",
                ));
            }
        }
        _ => {}
    }
    let refund = matches!(
        (from, to),
        (Ordered, Rejected)
            | (Ordered, Cancelled)
            | (Accepted, Cancelled)
            | (InProgress, Cancelled)
    );
    Ok(Verdict { refund })
}

fn not_now(from: RequestStatus, to: RequestStatus) -> CommissionError {
    let detail = match to {
        RequestStatus::Ordered => "A request becomes ordered only through its payment.".to_owned(),
        RequestStatus::Expired => "Only an unpaid request expires, by itself.".to_owned(),
        RequestStatus::AwaitingPayment => {
            "A request cannot go back to awaiting payment.".to_owned()
        }
        _ => format!(
            "A request that is {} cannot become {}.",
            from.as_str(),
            to.as_str()
        ),
    };
    CommissionError::conflict("invalid_transition", detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(days: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap() + chrono::Duration::days(days)
    }

    const FAN: i64 = 1;
    const CREATOR: i64 = 2;

    fn req(status: RequestStatus) -> Request {
        Request {
            id: 1,
            commission_id: 9,
            fan_id: FAN,
            creator_id: CREATOR,
            description: "a cat".into(),
            contact_details: "@fan".into(),
            mode_of_delivery: "1".into(),
            status,
            amount: 50_000,
            currency: Currency::Inr,
            razorpay_order_id: Some("order_1".into()),
            razorpay_payment_id: Some("pay_1".into()),
            hold_until: t(0),
            paid_at: Some(t(0)),
            deliver_by: Some(t(7)),
            delivered_at: Some(t(3)),
            created_at: t(0),
            updated_at: t(0),
        }
    }

    fn offering() -> Offering {
        Offering {
            id: 9,
            creator_id: CREATOR,
            title: "Portrait".into(),
            description: String::new(),
            price: 50_000,
            currency: Currency::Inr,
            delivery_days: 7,
            slots: 2,
            is_open: true,
            created_at: t(0),
            updated_at: t(0),
        }
    }

    fn code(e: CommissionError) -> (u16, String) {
        match e {
            CommissionError::Forbidden(m) => (403, m),
            CommissionError::Conflict { code, .. } => (409, code.to_owned()),
            CommissionError::Invalid(f) => (400, format!("{f:?}")),
            other => (0, other.to_string()),
        }
    }

    #[test]
    fn the_happy_path_is_walked_by_the_right_parties() {
        use RequestStatus::*;
        let steps = [
            (AwaitingPayment, Ordered, Actor::System, None),
            (Ordered, Accepted, Actor::Creator(CREATOR), None),
            (Accepted, InProgress, Actor::Creator(CREATOR), None),
            (
                InProgress,
                Delivered,
                Actor::Creator(CREATOR),
                Some("here it is"),
            ),
            (Delivered, Completed, Actor::Fan(FAN), None),
        ];
        for (from, to, actor, msg) in steps {
            let v = decide(&req(from), to, actor, msg, t(1), 7).unwrap();
            assert!(!v.refund, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn the_wrong_party_is_forbidden_and_impossible_moves_conflict() {
        use RequestStatus::*;
        // The fan cannot accept; the creator cannot complete or cancel.
        assert_eq!(
            code(decide(&req(Ordered), Accepted, Actor::Fan(FAN), None, t(1), 7).unwrap_err()).0,
            403
        );
        assert_eq!(
            code(
                decide(
                    &req(Delivered),
                    Completed,
                    Actor::Creator(CREATOR),
                    None,
                    t(1),
                    7
                )
                .unwrap_err()
            )
            .0,
            403
        );
        assert_eq!(
            code(
                decide(
                    &req(Ordered),
                    Cancelled,
                    Actor::Creator(CREATOR),
                    None,
                    t(1),
                    7
                )
                .unwrap_err()
            )
            .0,
            403
        );
        // Nobody may skip states or leave an end.
        for (from, to) in [
            (Ordered, Delivered),
            (Accepted, Delivered),
            (Completed, Cancelled),
            (Rejected, Accepted),
            (Expired, Cancelled),
            (Delivered, Cancelled),
            (Accepted, Rejected),
        ] {
            for actor in [Actor::Fan(FAN), Actor::Creator(CREATOR)] {
                let e = decide(&req(from), to, actor, Some("x"), t(1), 7).unwrap_err();
                assert_eq!(
                    code(e),
                    (409, "invalid_transition".into()),
                    "{from:?}->{to:?}"
                );
            }
        }
        // Payment-only moves are never a party's.
        let e = decide(
            &req(AwaitingPayment),
            Ordered,
            Actor::Fan(FAN),
            None,
            t(1),
            7,
        )
        .unwrap_err();
        assert_eq!(code(e).0, 409);
    }

    #[test]
    fn refunds_follow_rejection_and_paid_cancellation_only() {
        use RequestStatus::*;
        assert!(
            decide(
                &req(Ordered),
                Rejected,
                Actor::Creator(CREATOR),
                Some("busy"),
                t(1),
                7
            )
            .unwrap()
            .refund
        );
        assert!(
            decide(&req(Ordered), Cancelled, Actor::Fan(FAN), None, t(1), 7)
                .unwrap()
                .refund
        );
        assert!(
            !decide(
                &req(AwaitingPayment),
                Cancelled,
                Actor::Fan(FAN),
                None,
                t(1),
                7
            )
            .unwrap()
            .refund
        );
        // A rejection needs a reason; a delivery a message.
        assert_eq!(
            code(
                decide(
                    &req(Ordered),
                    Rejected,
                    Actor::Creator(CREATOR),
                    Some(" "),
                    t(1),
                    7
                )
                .unwrap_err()
            )
            .0,
            400
        );
        assert_eq!(
            code(
                decide(
                    &req(InProgress),
                    Delivered,
                    Actor::Creator(CREATOR),
                    None,
                    t(1),
                    7
                )
                .unwrap_err()
            )
            .0,
            400
        );
    }

    #[test]
    fn accepted_work_is_cancellable_only_when_overdue() {
        use RequestStatus::*;
        for from in [Accepted, InProgress] {
            let e = decide(&req(from), Cancelled, Actor::Fan(FAN), None, t(7), 7).unwrap_err();
            assert_eq!(code(e), (409, "not_overdue".into()));
            let v = decide(&req(from), Cancelled, Actor::Fan(FAN), None, t(8), 7).unwrap();
            assert!(v.refund);
        }
    }

    #[test]
    fn autocompletion_waits_for_its_delay() {
        use RequestStatus::*;
        // Delivered at day 3, 7 days of autocomplete: due at day 10.
        let e = decide(&req(Delivered), Completed, Actor::System, None, t(9), 7).unwrap_err();
        assert_eq!(code(e), (409, "not_due".into()));
        assert!(decide(&req(Delivered), Completed, Actor::System, None, t(10), 7).is_ok());
        // The fan need not wait.
        assert!(decide(&req(Delivered), Completed, Actor::Fan(FAN), None, t(4), 7).is_ok());
    }

    #[test]
    fn slots_and_deadlines() {
        use RequestStatus::*;
        assert!(holds_slot(AwaitingPayment, t(1), t(0)));
        assert!(
            !holds_slot(AwaitingPayment, t(0), t(0)),
            "the hold ends at its instant"
        );
        for s in [Ordered, Accepted, InProgress] {
            assert!(holds_slot(s, t(-10), t(0)));
        }
        for s in [Delivered, Completed, Rejected, Cancelled, Expired] {
            assert!(!holds_slot(s, t(10), t(0)));
        }
        assert_eq!(deliver_by(t(0), 7), t(7));
        let o = offering();
        assert!(refuse_order(&o, FAN, Some("inr"), 1).is_none());
        assert_eq!(
            code(refuse_order(&o, FAN, None, 2).unwrap()),
            (409, "no_free_slot".into())
        );
        assert_eq!(
            code(refuse_order(&o, CREATOR, None, 0).unwrap()),
            (409, "own_commission".into())
        );
        assert_eq!(code(refuse_order(&o, FAN, Some("USD"), 0).unwrap()).0, 400);
        let closed = Offering {
            is_open: false,
            ..o
        };
        assert_eq!(
            code(refuse_order(&closed, FAN, None, 0).unwrap()),
            (409, "commission_closed".into())
        );
    }

    #[test]
    fn offerings_are_validated() {
        let ok = OfferingInput {
            title: Some("Portrait".into()),
            price: Some(100),
            currency: Some("usd".into()),
            delivery_days: Some(365),
            slots: Some(1000),
            ..Default::default()
        };
        let f = validate_offering(&ok, None).unwrap();
        assert_eq!((f.currency, f.is_open), (Currency::Usd, true));
        for (bad, field) in [
            (
                OfferingInput {
                    price: Some(99),
                    ..ok.clone()
                },
                "price",
            ),
            (
                OfferingInput {
                    title: Some(" ".into()),
                    ..ok.clone()
                },
                "title",
            ),
            (
                OfferingInput {
                    title: Some("x".repeat(201)),
                    ..ok.clone()
                },
                "title",
            ),
            (
                OfferingInput {
                    delivery_days: Some(0),
                    ..ok.clone()
                },
                "delivery_days",
            ),
            (
                OfferingInput {
                    slots: Some(1001),
                    ..ok.clone()
                },
                "slots",
            ),
            (
                OfferingInput {
                    currency: Some("EUR".into()),
                    ..ok.clone()
                },
                "currency",
            ),
            (
                OfferingInput {
                    slots: None,
                    ..ok.clone()
                },
                "slots",
            ),
        ] {
            let e = validate_offering(&bad, None).unwrap_err();
            assert!(e.has(field), "{field}: {e:?}");
        }
        // An update changes only what it names.
        let cur = offering();
        let f = validate_offering(
            &OfferingInput {
                slots: Some(5),
                ..Default::default()
            },
            Some(&cur),
        )
        .unwrap();
        assert_eq!(
            (f.slots, f.price, f.title.as_str()),
            (5, 50_000, "Portrait")
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RequestStatus::parse("paid"), None);
    }
}
