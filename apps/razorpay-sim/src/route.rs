//! Razorpay Route: linked accounts, stakeholders and the `route` product configuration
//! (`/v2/accounts`), transfers from payments, reversals and settlements (`/v1`), and the control
//! API that plays Razorpay's reviewers and its settlement runs.

use crate::input::{ApiError, Input};
use crate::state::{alnum, check_id, new_id, now, AccountRec, State};
use crate::Simulator;
use rand::Rng;
use razorpay::{
    AccountStatus, ActivationStatus, Collection, Dispute, LinkedAccount, MerchantProduct,
    PaymentStatus, ProductConfiguration, Reversal, Settlement, Stakeholder, Transfer,
    TransferError, TransferStatus,
};
use serde::Serialize;
use serde_json::{json, Value};

type Res = Result<Value, ApiError>;

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn collection<T: Serialize>(items: Vec<T>) -> Value {
    to_value(&Collection {
        entity: "collection".into(),
        count: items.len() as i64,
        items,
    })
}

/// `acc_prd_` + 14 alphanumerics (the product configuration's id in Razorpay's examples).
fn product_id() -> String {
    format!("acc_prd_{}", alnum(14))
}

fn check_product_id(id: &str) -> Result<(), ApiError> {
    let ok = id
        .strip_prefix("acc_prd_")
        .is_some_and(|r| r.len() == 14 && r.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_id(id))
    }
}

const BUSINESS_TYPES: [&str; 12] = [
    "individual",
    "proprietorship",
    "partnership",
    "private_limited",
    "public_limited",
    "llp",
    "ngo",
    "trust",
    "society",
    "not_yet_registered",
    "huf",
    "educational_institutes",
];

// ---------------------------------------------------------------------------
// /v2/accounts
// ---------------------------------------------------------------------------

/// Entry point for `/v2/...` (after auth and injected failures).
pub(crate) fn route_v2(sim: &Simulator, method: &str, segs: &[&str], input: Input) -> Res {
    match (method, segs) {
        ("POST", ["accounts"]) => create_account(sim, input),
        ("GET", ["accounts", id]) => sim.read(|st| account(st, id).map(|a| to_value(&a.account))),
        ("PATCH", ["accounts", id]) => update_account(sim, id, input),
        ("POST", ["accounts", id, "stakeholders"]) => create_stakeholder(sim, id, input),
        ("GET", ["accounts", id, "stakeholders"]) => {
            sim.read(|st| account(st, id).map(|a| collection(a.stakeholders.clone())))
        }
        ("GET", ["accounts", id, "stakeholders", sid]) => sim.read(|st| {
            account(st, id)?
                .stakeholders
                .iter()
                .find(|s| s.id == *sid)
                .map(to_value)
                .ok_or_else(ApiError::not_found)
        }),
        ("PATCH", ["accounts", id, "stakeholders", sid]) => update_stakeholder(sim, id, sid, input),
        ("POST", ["accounts", id, "products"]) => request_product(sim, id, input),
        ("GET", ["accounts", id, "products", pid]) => sim.read(|st| {
            check_product_id(pid)?;
            account(st, id)?
                .products
                .iter()
                .find(|p| p.id == *pid)
                .map(to_value)
                .ok_or_else(ApiError::not_found)
        }),
        ("PATCH", ["accounts", id, "products", pid]) => update_product(sim, id, pid, input),
        _ => Err(ApiError::unknown_url()),
    }
}

fn account<'a>(st: &'a State, id: &str) -> Result<&'a AccountRec, ApiError> {
    check_id(id, "acc")?;
    st.accounts
        .iter()
        .find(|a| a.account.id == id)
        .ok_or_else(ApiError::not_found)
}

fn account_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut AccountRec, ApiError> {
    check_id(id, "acc")?;
    st.accounts
        .iter_mut()
        .find(|a| a.account.id == id)
        .ok_or_else(ApiError::not_found)
}

fn phone(input: &Input, required: bool) -> Result<Option<String>, ApiError> {
    let p = if required {
        Some(input.req_str("phone")?)
    } else {
        input.str("phone")?
    };
    if let Some(p) = &p {
        let digits = p.trim_start_matches('+');
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::validation(
                "The phone format is invalid.",
                Some("phone"),
            ));
        }
    }
    Ok(p)
}

fn legal_name(input: &Input, required: bool) -> Result<Option<String>, ApiError> {
    let n = if required {
        Some(input.req_str("legal_business_name")?)
    } else {
        input.str("legal_business_name")?
    };
    if let Some(n) = &n {
        if !(4..=200).contains(&n.chars().count()) {
            return Err(ApiError::validation(
                "The legal business name must be between 4 and 200 characters.",
                Some("legal_business_name"),
            ));
        }
    }
    Ok(n)
}

fn create_account(sim: &Simulator, input: Input) -> Res {
    input.only(&[
        "email",
        "phone",
        "type",
        "reference_id",
        "legal_business_name",
        "business_type",
        "contact_name",
        "profile",
        "legal_info",
        "notes",
        "customer_facing_business_name",
    ])?;
    let email = input.req_str("email")?;
    if !email.contains('@') {
        return Err(ApiError::validation(
            "The email must be a valid email address.",
            Some("email"),
        ));
    }
    let phone = phone(&input, true)?.unwrap_or_default();
    let kind = input.req_str("type")?;
    if kind != "route" {
        return Err(ApiError::validation(
            "The selected type is invalid.",
            Some("type"),
        ));
    }
    let reference_id = input.str("reference_id")?;
    if reference_id
        .as_ref()
        .is_some_and(|r| r.chars().count() > 20)
    {
        return Err(ApiError::validation(
            "The reference id may not be greater than 20 characters.",
            Some("reference_id"),
        ));
    }
    let legal = legal_name(&input, true)?.unwrap_or_default();
    let business_type = input.req_str("business_type")?;
    if !BUSINESS_TYPES.contains(&business_type.as_str()) {
        return Err(ApiError::validation(
            "Invalid business type",
            Some("business_type"),
        ));
    }
    let contact_name = input.req_str("contact_name")?;
    let profile = input
        .obj("profile")?
        .ok_or_else(|| input.required("profile"))?;
    profile.req_str("category")?;
    profile.req_str("subcategory")?;
    let notes = input.notes()?;
    let raw_profile = serde_json::to_value(profile_map(&profile)).unwrap_or_default();
    let legal_info = input
        .obj("legal_info")?
        .map(|l| Value::Object(l.into_map()))
        .unwrap_or_else(|| json!({}));
    sim.mutate(|st, _| {
        if let Some(a) = st.accounts.iter().find(|a| a.account.email == email) {
            return Err(ApiError::validation(
                format!(
                    "Merchant email already exists for account - {}",
                    a.account.id
                ),
                Some("email"),
            ));
        }
        let account = LinkedAccount {
            id: new_id("acc"),
            account_type: "route".into(),
            status: AccountStatus::Created,
            email,
            phone,
            reference_id,
            legal_business_name: legal,
            business_type,
            contact_name: Some(contact_name),
            profile: raw_profile,
            legal_info,
            notes,
            created_at: now(),
        };
        st.accounts.push(AccountRec {
            account: account.clone(),
            stakeholders: Vec::new(),
            products: Vec::new(),
        });
        Ok(to_value(&account))
    })
}

fn profile_map(p: &Input) -> serde_json::Map<String, Value> {
    p.clone().into_map()
}

fn update_account(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&[
        "phone",
        "legal_business_name",
        "contact_name",
        "customer_facing_business_name",
        "profile",
        "legal_info",
        "notes",
        "reference_id",
    ])?;
    let phone = phone(&input, false)?;
    let legal = legal_name(&input, false)?;
    let contact = input.str("contact_name")?;
    let notes = input.notes()?;
    let profile = input.obj("profile")?.map(|p| Value::Object(p.into_map()));
    sim.mutate(|st, _| {
        let rec = account_mut(st, id)?;
        let a = &mut rec.account;
        if a.status == AccountStatus::Suspended {
            return Err(ApiError::state(
                "The account is suspended and cannot be updated.",
                "status",
            ));
        }
        if let Some(p) = phone {
            a.phone = p;
        }
        if let Some(l) = legal {
            a.legal_business_name = l;
        }
        if let Some(c) = contact {
            a.contact_name = Some(c);
        }
        if let Some(p) = profile {
            a.profile = p;
        }
        if !notes.is_empty() {
            a.notes = notes;
        }
        Ok(to_value(a))
    })
}

fn stakeholder_fields(
    input: &Input,
    create: bool,
) -> Result<(Option<String>, Option<String>), ApiError> {
    input.only(&[
        "name",
        "email",
        "phone",
        "percentage_ownership",
        "relationship",
        "addresses",
        "kyc",
        "notes",
    ])?;
    let (name, email) = if create {
        (Some(input.req_str("name")?), Some(input.req_str("email")?))
    } else {
        (input.str("name")?, input.str("email")?)
    };
    if email.as_ref().is_some_and(|e| !e.contains('@')) {
        return Err(ApiError::validation(
            "The email must be a valid email address.",
            Some("email"),
        ));
    }
    Ok((name, email))
}

fn create_stakeholder(sim: &Simulator, id: &str, input: Input) -> Res {
    let (name, email) = stakeholder_fields(&input, true)?;
    let phone = input
        .obj("phone")?
        .map(|p| Value::Object(p.into_map()))
        .unwrap_or_else(|| json!({}));
    let notes = input.notes()?;
    sim.mutate(|st, _| {
        let rec = account_mut(st, id)?;
        let s = Stakeholder {
            id: new_id("sth"),
            entity: "stakeholder".into(),
            name: name.unwrap_or_default(),
            email: email.unwrap_or_default(),
            phone,
            notes,
        };
        rec.stakeholders.push(s.clone());
        Ok(to_value(&s))
    })
}

fn update_stakeholder(sim: &Simulator, id: &str, sid: &str, input: Input) -> Res {
    let (name, email) = stakeholder_fields(&input, false)?;
    check_id(sid, "sth")?;
    sim.mutate(|st, _| {
        let rec = account_mut(st, id)?;
        let s = rec
            .stakeholders
            .iter_mut()
            .find(|s| s.id == sid)
            .ok_or_else(ApiError::not_found)?;
        if let Some(n) = name {
            s.name = n;
        }
        if let Some(e) = email {
            s.email = e;
        }
        Ok(to_value(s))
    })
}

fn settlement_requirements(account_id: &str) -> Vec<Value> {
    [
        "settlements.beneficiary_name",
        "settlements.account_number",
        "settlements.ifsc_code",
    ]
    .into_iter()
    .map(|f| {
        json!({
            "field_reference": f,
            "resolution_url": format!("/accounts/{account_id}/products"),
            "status": "required",
            "reason_code": "field_missing",
        })
    })
    .collect()
}

fn request_product(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&["product_name", "tnc_accepted", "ip"])?;
    let name = input.req_str("product_name")?;
    if name != "route" {
        return Err(ApiError::validation(
            "The selected product name is invalid.",
            Some("product_name"),
        ));
    }
    let tnc = input.bool("tnc_accepted")?.unwrap_or(false);
    sim.mutate(|st, _| {
        let rec = account_mut(st, id)?;
        if let Some(p) = rec.products.iter().find(|p| p.product_name == "route") {
            // Razorpay answers the existing configuration of the product.
            return Ok(to_value(p));
        }
        let p = ProductConfiguration {
            id: product_id(),
            account_id: rec.account.id.clone(),
            product_name: "route".into(),
            activation_status: ActivationStatus::Requested,
            requirements: settlement_requirements(&rec.account.id),
            active_configuration: json!({ "settlements": {
                "account_number": null, "ifsc_code": null, "beneficiary_name": null } }),
            requested_configuration: json!({}),
            tnc: json!({ "accepted": tnc, "accepted_at": if tnc { Some(now()) } else { None } }),
            requested_at: now(),
        };
        rec.products.push(p.clone());
        Ok(to_value(&p))
    })
}

fn is_ifsc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && b[4] == b'0'
        && b[5..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn update_product(sim: &Simulator, id: &str, pid: &str, input: Input) -> Res {
    input.only(&["settlements", "tnc_accepted", "ip", "payment_methods"])?;
    check_product_id(pid)?;
    let tnc = input.bool("tnc_accepted")?;
    let settlements = match input.obj("settlements")? {
        Some(s) => {
            s.only(&["account_number", "ifsc_code", "beneficiary_name"])?;
            let number = s.req_str("account_number")?;
            if !(5..=20).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::validation(
                    "The account number format is invalid.",
                    Some("settlements.account_number"),
                ));
            }
            let ifsc = s.req_str("ifsc_code")?;
            if !is_ifsc(&ifsc) {
                return Err(ApiError::validation(
                    "The ifsc code format is invalid.",
                    Some("settlements.ifsc_code"),
                ));
            }
            let name = s.req_str("beneficiary_name")?;
            Some(json!({ "account_number": number, "ifsc_code": ifsc, "beneficiary_name": name }))
        }
        None => None,
    };
    sim.mutate(|st, em| {
        let rec = account_mut(st, id)?;
        let account_id = rec.account.id.clone();
        let p = rec
            .products
            .iter_mut()
            .find(|p| p.id == pid)
            .ok_or_else(ApiError::not_found)?;
        if p.activation_status == ActivationStatus::Suspended {
            return Err(ApiError::state(
                "The product is suspended and cannot be updated.",
                "activation_status",
            ));
        }
        if let Some(t) = tnc {
            p.tnc = json!({ "accepted": t, "accepted_at": if t { Some(now()) } else { None } });
        }
        if let Some(s) = settlements {
            p.active_configuration = json!({ "settlements": s });
            p.requirements.clear();
            // Complete details go to review (the control API plays the reviewer). A change of
            // the bank account of an activated product is reviewed again.
            p.activation_status = ActivationStatus::UnderReview;
            let p = p.clone();
            em.product("product.route.under_review", &p, &account_id);
            return Ok(to_value(&p));
        }
        Ok(to_value(p))
    })
}

// ---------------------------------------------------------------------------
// /v1 transfers, reversals, settlements
// ---------------------------------------------------------------------------

/// The `/v1` Route routes; `None` when the path is not one of them.
pub(crate) fn route_v1(
    sim: &Simulator,
    method: &str,
    segs: &[&str],
    query: &Input,
    input: &dyn Fn() -> Result<Input, ApiError>,
) -> Option<Res> {
    Some(match (method, segs) {
        ("POST", ["payments", id, "transfers"]) => {
            input().and_then(|i| create_transfers(sim, id, i))
        }
        ("GET", ["payments", id, "transfers"]) => {
            if let Err(e) = check_id(id, "pay") {
                return Some(Err(e));
            }
            sim.read(|st| {
                if !st.payments.iter().any(|p| p.id == *id) {
                    return Err(ApiError::not_found());
                }
                Ok(collection(
                    st.transfers
                        .iter()
                        .filter(|t| t.source == *id)
                        .cloned()
                        .collect::<Vec<_>>(),
                ))
            })
        }
        ("GET", ["transfers"]) => list_transfers(sim, query),
        ("GET", ["transfers", id]) => sim.read(|st| transfer(st, id).map(to_value)),
        ("PATCH", ["transfers", id]) => input().and_then(|i| update_transfer(sim, id, i)),
        ("POST", ["transfers", id, "reversals"]) => {
            input().and_then(|i| reverse_transfer(sim, id, i))
        }
        ("GET", ["transfers", id, "reversals"]) => sim.read(|st| {
            transfer(st, id)?;
            Ok(collection(
                st.reversals
                    .iter()
                    .filter(|r| r.transfer_id == *id)
                    .cloned()
                    .collect::<Vec<_>>(),
            ))
        }),
        ("GET", ["settlements"]) => sim.read(|st| Ok(collection(st.settlements.clone()))),
        ("GET", ["settlements", id]) => sim.read(|st| {
            check_id(id, "setl")?;
            st.settlements
                .iter()
                .find(|s| s.id == *id)
                .map(to_value)
                .ok_or_else(ApiError::not_found)
        }),
        _ => return None,
    })
}

fn transfer<'a>(st: &'a State, id: &str) -> Result<&'a Transfer, ApiError> {
    check_id(id, "trf")?;
    st.transfers
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(ApiError::not_found)
}

fn list_transfers(sim: &Simulator, q: &Input) -> Res {
    let setl = q.str("recipient_settlement_id")?;
    let count = q.int("count")?.unwrap_or(10);
    if !(1..=100).contains(&count) {
        return Err(ApiError::validation(
            "The count may not be greater than 100.",
            Some("count"),
        ));
    }
    let skip = q.int("skip")?.unwrap_or(0).max(0);
    sim.read(|st| {
        Ok(collection(
            st.transfers
                .iter()
                .rev()
                .filter(|t| {
                    setl.as_deref()
                        .is_none_or(|s| t.recipient_settlement_id.as_deref() == Some(s))
                })
                .skip(skip as usize)
                .take(count as usize)
                .cloned()
                .collect::<Vec<_>>(),
        ))
    })
}

/// Transfers that still hold money of their payment (failed and reversed ones do not).
fn live(t: &Transfer) -> bool {
    !matches!(t.status, TransferStatus::Failed | TransferStatus::Reversed)
}

fn create_transfers(sim: &Simulator, payment_id: &str, input: Input) -> Res {
    input.only(&["transfers"])?;
    let items = input.array("transfers")?;
    if items.is_empty() {
        return Err(input.required("transfers"));
    }
    struct Req {
        account: String,
        amount: i64,
        currency: String,
        notes: razorpay::Notes,
        on_hold: bool,
        on_hold_until: Option<i64>,
    }
    let mut reqs = Vec::new();
    for it in &items {
        it.only(&[
            "account",
            "amount",
            "currency",
            "notes",
            "linked_account_notes",
            "on_hold",
            "on_hold_until",
        ])?;
        let account = it.req_str("account")?;
        let amount = it.req_int("amount")?;
        if amount < 100 {
            return Err(ApiError::validation(
                "The amount must be at least 100.",
                Some("amount"),
            ));
        }
        let currency = it.req_str("currency")?;
        if currency != "INR" {
            return Err(ApiError::validation(
                "Currency other than INR is not supported for transfers.",
                Some("currency"),
            ));
        }
        reqs.push(Req {
            account,
            amount,
            currency,
            notes: it.notes()?,
            on_hold: it.bool("on_hold")?.unwrap_or(false),
            on_hold_until: it.int("on_hold_until")?,
        });
    }
    let fail_next = {
        let c = sim.shared.lock_chaos();
        c.fail_transfers
    };
    sim.mutate(|st, em| {
        let p = st.payment_mut(payment_id)?.clone();
        if p.status != PaymentStatus::Captured {
            return Err(ApiError::bad_request(
                "Transfers can only be created for captured payments",
            ));
        }
        if p.amount_refunded > 0 {
            return Err(ApiError::bad_request(
                "Transfer cannot be created for a payment on which a refund has been initiated",
            ));
        }
        if p.currency != "INR" {
            return Err(ApiError::validation(
                "Currency other than INR is not supported for transfers.",
                Some("currency"),
            ));
        }
        let already: i64 = st
            .transfers
            .iter()
            .filter(|t| t.source == payment_id && live(t))
            .map(|t| t.amount - t.amount_reversed)
            .sum();
        let asked: i64 = reqs.iter().map(|r| r.amount).sum();
        if already + asked > p.amount {
            return Err(ApiError::validation(
                "The sum of amount requested for transfer is greater than the captured amount",
                Some("amount"),
            ));
        }
        for r in &reqs {
            let rec = account(st, &r.account).map_err(|e| ApiError {
                field: Some("account".into()),
                ..e
            })?;
            let active = rec
                .products
                .iter()
                .any(|p| p.product_name == "route" && p.activation_status == ActivationStatus::Activated);
            if !active || rec.account.status == AccountStatus::Suspended {
                return Err(ApiError::validation(
                    format!("Linked account {} is not activated for route transfers", r.account),
                    Some("account"),
                ));
            }
        }
        let mut failures = fail_next;
        let mut out = Vec::new();
        for r in reqs {
            let t0 = now();
            let mut t = Transfer {
                id: new_id("trf"),
                entity: "transfer".into(),
                status: TransferStatus::Processed,
                source: payment_id.to_owned(),
                recipient: r.account,
                amount: r.amount,
                currency: r.currency,
                amount_reversed: 0,
                fees: 0,
                tax: 0,
                notes: r.notes,
                on_hold: r.on_hold,
                on_hold_until: r.on_hold_until,
                recipient_settlement_id: None,
                created_at: t0,
                processed_at: Some(t0),
                error: TransferError::default(),
            };
            if failures > 0 {
                failures -= 1;
                t.status = TransferStatus::Failed;
                t.processed_at = None;
                t.error = TransferError {
                    code: Some("BAD_REQUEST_ERROR".into()),
                    description: Some(
                        "The transfer could not be processed: the linked account's bank rejected it."
                            .into(),
                    ),
                    reason: Some("transfer_failed".into()),
                };
                em.transfer("transfer.failed", &t);
            } else {
                em.transfer("transfer.processed", &t);
            }
            st.transfers.push(t.clone());
            out.push(t);
        }
        sim.shared.lock_chaos().fail_transfers = failures;
        Ok(collection(out))
    })
}

fn update_transfer(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&["on_hold", "on_hold_until"])?;
    let on_hold = input
        .bool("on_hold")?
        .ok_or_else(|| input.required("on_hold"))?;
    let until = input.int("on_hold_until")?;
    sim.mutate(|st, _| {
        check_id(id, "trf")?;
        let t = st
            .transfers
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(ApiError::not_found)?;
        if t.recipient_settlement_id.is_some() {
            return Err(ApiError::state(
                "The transfer is already settled",
                "on_hold",
            ));
        }
        t.on_hold = on_hold;
        t.on_hold_until = if on_hold { until } else { None };
        Ok(to_value(t))
    })
}

fn reverse_transfer(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&["amount", "notes", "linked_account_notes"])?;
    let amount = input.int("amount")?;
    let notes = input.notes()?;
    sim.mutate(|st, _| {
        check_id(id, "trf")?;
        let t = st
            .transfers
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(ApiError::not_found)?;
        if t.status == TransferStatus::Failed {
            return Err(ApiError::bad_request("A failed transfer cannot be reversed"));
        }
        let left = t.amount - t.amount_reversed;
        let amt = amount.unwrap_or(left);
        if amt < 1 || amt > left {
            return Err(ApiError::validation(
                "The reversal amount provided is greater than the unreversed amount of the transfer",
                Some("amount"),
            ));
        }
        t.amount_reversed += amt;
        t.status = if t.amount_reversed == t.amount {
            TransferStatus::Reversed
        } else {
            TransferStatus::PartiallyReversed
        };
        let r = Reversal {
            id: new_id("rvrsl"),
            entity: "reversal".into(),
            transfer_id: t.id.clone(),
            amount: amt,
            currency: t.currency.clone(),
            notes,
            created_at: now(),
        };
        st.reversals.push(r.clone());
        Ok(to_value(&r))
    })
}

// ---------------------------------------------------------------------------
// control API
// ---------------------------------------------------------------------------

fn activation(s: &str) -> Result<ActivationStatus, ApiError> {
    let a = ActivationStatus::parse(s);
    match a {
        ActivationStatus::Other(_) | ActivationStatus::Requested => Err(ApiError::validation(
            "activation_status must be under_review, needs_clarification, activated or suspended",
            Some("activation_status"),
        )),
        a => Ok(a),
    }
}

/// `POST /_sim/route/products {account_id?, activation_status}`: Razorpay's review of linked
/// accounts. Moves the `route` product of `account_id` (or of every account whose product is not
/// in that status yet) to `activation_status` and sends `product.route.<status>` (and
/// `account.suspended` on suspension). Answers the products changed.
pub(crate) fn set_product_status(sim: &Simulator, input: Input) -> Res {
    input.only(&["account_id", "activation_status"])?;
    let only = input.str("account_id")?;
    let status = activation(&input.req_str("activation_status")?)?;
    sim.mutate(|st, em| {
        if let Some(a) = &only {
            account(st, a).map_err(|e| ApiError {
                field: Some("account_id".into()),
                ..e
            })?;
        }
        let mut changed = Vec::new();
        for rec in st.accounts.iter_mut() {
            if only.as_deref().is_some_and(|a| a != rec.account.id) {
                continue;
            }
            let account_id = rec.account.id.clone();
            for p in rec.products.iter_mut() {
                if p.activation_status == status {
                    continue;
                }
                // Details missing: nothing to review yet (unless the account is suspended).
                if p.activation_status == ActivationStatus::Requested
                    && status != ActivationStatus::Suspended
                {
                    continue;
                }
                p.activation_status = status.clone();
                if status == ActivationStatus::NeedsClarification {
                    p.requirements = vec![json!({
                        "field_reference": "settlements.beneficiary_name",
                        "resolution_url": format!("/accounts/{account_id}/products/{}", p.id),
                        "status": "required",
                        "reason_code": "field_mismatch",
                    })];
                }
                em.product(&format!("product.route.{status}"), p, &account_id);
                changed.push(p.clone());
            }
            if status == ActivationStatus::Suspended {
                rec.account.status = AccountStatus::Suspended;
                em.account("account.suspended", &rec.account);
            } else if status == ActivationStatus::Activated {
                rec.account.status = AccountStatus::Activated;
            }
        }
        Ok(collection(changed))
    })
}

/// `POST /_sim/transfers/fail_next {count}`: the next `count` transfers created fail
/// (`status: failed`, `transfer.failed`).
pub(crate) fn fail_next(sim: &Simulator, input: Input) -> Res {
    input.only(&["count"])?;
    let n = input.int("count")?.unwrap_or(1).max(0);
    let mut c = sim.shared.lock_chaos();
    c.fail_transfers = u32::try_from(n).unwrap_or(u32::MAX);
    Ok(json!({ "fail_transfers": c.fail_transfers }))
}

/// `POST /_sim/transfers/drop_next_answer {count}`: the next `count` transfer creations are
/// made, but answered 504 (the lost answer).
pub(crate) fn drop_next_answer(sim: &Simulator, input: Input) -> Res {
    input.only(&["count"])?;
    let n = input.int("count")?.unwrap_or(1).max(0);
    let mut c = sim.shared.lock_chaos();
    c.drop_transfer_answers = u32::try_from(n).unwrap_or(u32::MAX);
    Ok(json!({ "drop_transfer_answers": c.drop_transfer_answers }))
}

fn utr() -> String {
    let mut rng = rand::thread_rng();
    let digits: String = (0..12)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    format!("RZRP{digits}")
}

/// `POST /_sim/settlements/run {account_id?}`: settles every processed, unheld, unreversed
/// transfer not settled yet, one settlement per linked account (`settlement.processed` with
/// its UTR; the transfers get `recipient_settlement_id`). Answers the settlements made.
pub(crate) fn run_settlements(sim: &Simulator, input: Input) -> Res {
    input.only(&["account_id"])?;
    let only = input.str("account_id")?;
    sim.mutate(|st, em| {
        let mut by_account: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, t) in st.transfers.iter().enumerate() {
            let due = t.status == TransferStatus::Processed
                && !t.on_hold
                && t.recipient_settlement_id.is_none()
                && only.as_deref().is_none_or(|a| a == t.recipient);
            if !due {
                continue;
            }
            match by_account.iter_mut().find(|(a, _)| *a == t.recipient) {
                Some((_, v)) => v.push(i),
                None => by_account.push((t.recipient.clone(), vec![i])),
            }
        }
        let mut out = Vec::new();
        for (_, idx) in by_account {
            let s = Settlement {
                id: new_id("setl"),
                entity: "settlement".into(),
                amount: idx.iter().map(|i| st.transfers[*i].amount).sum(),
                status: "processed".into(),
                fees: 0,
                tax: 0,
                utr: Some(utr()),
                created_at: now(),
            };
            for i in idx {
                st.transfers[i].recipient_settlement_id = Some(s.id.clone());
            }
            em.settlement(&s);
            st.settlements.push(s.clone());
            out.push(s);
        }
        Ok(collection(out))
    })
}

/// `POST /_sim/payments/:id/dispute {status: created|under_review|won|lost|closed, amount?}`: a
/// chargeback of a captured payment (`payment.dispute.<status>` with payment and dispute).
pub(crate) fn dispute(sim: &Simulator, payment_id: &str, input: Input) -> Res {
    input.only(&["status", "amount"])?;
    let status = input.str("status")?.unwrap_or_else(|| "created".into());
    if ![
        "created",
        "under_review",
        "action_required",
        "won",
        "lost",
        "closed",
    ]
    .contains(&status.as_str())
    {
        return Err(ApiError::validation(
            "status must be created, under_review, action_required, won, lost or closed",
            Some("status"),
        ));
    }
    let amount = input.int("amount")?;
    sim.mutate(|st, em| {
        let p = st.payment_mut(payment_id)?.clone();
        if !matches!(p.status, PaymentStatus::Captured | PaymentStatus::Refunded) {
            return Err(ApiError::state(
                "Only captured payments can be disputed",
                "status",
            ));
        }
        let idx = match st.disputes.iter().position(|d| d.payment_id == payment_id) {
            Some(i) => i,
            None => {
                st.disputes.push(Dispute {
                    id: new_id("disp"),
                    entity: "dispute".into(),
                    payment_id: payment_id.to_owned(),
                    amount: amount.unwrap_or(p.amount),
                    currency: p.currency.clone(),
                    status: "open".into(),
                    created_at: now(),
                });
                st.disputes.len() - 1
            }
        };
        let d = &mut st.disputes[idx];
        d.status = if status == "created" {
            "open".into()
        } else {
            status.clone()
        };
        let d = d.clone();
        em.dispute(&format!("payment.dispute.{status}"), &p, &d);
        Ok(to_value(&d))
    })
}

/// `payload.merchant_product.entity` of a product webhook.
pub(crate) fn merchant_product(p: &ProductConfiguration, account_id: &str) -> MerchantProduct {
    MerchantProduct {
        id: p.id.clone(),
        merchant_id: account_id.to_owned(),
        activation_status: p.activation_status.clone(),
    }
}
