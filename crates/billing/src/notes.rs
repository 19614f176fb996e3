//! The notes Oasis writes on Razorpay subscriptions and orders, and reads back from webhooks,
//! fetched objects and reconciliation: one type, written and parsed only here.
//!
//! The keys are the Django predecessor's (its README's webhook payloads are the contract):
//!
//! | checkout | Razorpay object | notes |
//! |---|---|---|
//! | recurring membership | subscription | `{type: subscription, userID, tierID}` |
//! | one-time tier purchase | order | `{type: subscription, username, userID, tierID}` |
//! | cheer (tip) | order | `{type: cheer, creatorID, username, name, message}` |
//! | commission | order | `{type: commission, creatorID, username, commissionID, requestID, description, contactDetails, status: ordered, mode_of_delivery}` |
//!
//! `type: subscription` means a membership on both objects: which kind is told by the object
//! the notes are on ([`NotesOn`]). In the seed's payloads `userID` may hold a username, and
//! numbers may arrive as JSON numbers (the Razorpay client turns every value into a string).
use crate::gateway::BillingPeriod;
use crate::ports::OrderKind;
use std::collections::BTreeMap;

/// Razorpay keeps at most 256 characters per note value; a cheer's name and message are cut
/// to these lengths in the notes (the stored order keeps them whole).
pub const NOTE_NAME_CHARS: usize = 100;
pub const NOTE_MESSAGE_CHARS: usize = 250;
/// Razorpay's limit for one note value: a commission request's texts are cut to it.
pub const NOTE_VALUE_CHARS: usize = 256;

/// Which Razorpay object carries the notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotesOn {
    Subscription,
    Order,
}

/// Who pays, as the notes name them: an id, or (the seed's payloads) a username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payer {
    Id(i64),
    Username(String),
}

impl Payer {
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.parse::<i64>() {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Username(s.to_owned()),
        })
    }

    /// The key `BillingStore::resolve_user` takes (a numeric id, else a username).
    pub fn lookup_key(&self) -> String {
        match self {
            Self::Id(id) => id.to_string(),
            Self::Username(u) => u.clone(),
        }
    }
}

/// What a checkout is for, as its notes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutNotes {
    /// A recurring membership (notes of a subscription).
    /// `period` is written only when yearly (`period: "yearly"`): monthly notes stay the seed's.
    Recurring {
        payer: Payer,
        tier_id: i64,
        period: BillingPeriod,
    },
    /// A one-time tier purchase (notes of an order); `username` is written beside `userID`.
    OneTime {
        payer: Payer,
        username: Option<String>,
        tier_id: i64,
    },
    /// A tip with a public name and message.
    Cheer {
        creator_id: i64,
        payer: Option<Payer>,
        name: String,
        message: String,
    },
    /// The payment of a commission request (the request's texts as the seed's payload
    /// carries them; `request` is absent in the seed's own payloads).
    Commission {
        creator_id: i64,
        payer: Option<Payer>,
        commission_id: i64,
        request: Option<CommissionRequestNotes>,
    },
}

/// What a commission order's notes say of its request (written cut to
/// [`NOTE_VALUE_CHARS`]; the stored request keeps them whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommissionRequestNotes {
    pub request_id: i64,
    pub description: String,
    pub contact_details: String,
    pub mode_of_delivery: String,
}

/// Why notes do not describe an Oasis checkout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotesError {
    #[error("notes carry no type")]
    MissingType,
    #[error("notes.type {0:?} is not an Oasis checkout")]
    UnknownType(String),
    #[error("notes lack {0}")]
    Missing(&'static str),
    #[error("notes.{0} is not a number")]
    NotANumber(&'static str),
    #[error("notes.period {0:?} is neither monthly nor yearly")]
    UnknownPeriod(String),
    #[error("a {0} checkout cannot be on a subscription")]
    NotOnSubscription(&'static str),
}

/// The notes of an object we never saw, read field by field (what adopting it needs), whatever
/// the other fields hold: the seed's payloads and other deployments' objects may be partial,
/// so this is more lenient than [`CheckoutNotes::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteFields {
    /// Who pays: on a subscription `userID`, else `username`; on an order `username`, else
    /// `userID`.
    pub payer: Option<Payer>,
    pub tier_id: Option<i64>,
    /// A subscription's billing period: absent = monthly (the seed's notes), unknown = `None`.
    pub period: Option<BillingPeriod>,
    pub creator_id: Option<i64>,
    pub commission_id: Option<i64>,
    /// The cheer's public name and message, as written.
    pub name: String,
    pub message: String,
}

impl NoteFields {
    pub fn read(on: NotesOn, notes: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| notes.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        let (first, second) = match on {
            NotesOn::Subscription => (USER_ID, USERNAME),
            NotesOn::Order => (USERNAME, USER_ID),
        };
        NoteFields {
            payer: get(first).or_else(|| get(second)).and_then(Payer::parse),
            tier_id: num(TIER_ID),
            period: match get(PERIOD) {
                None => Some(BillingPeriod::Monthly),
                Some(p) => BillingPeriod::parse(p),
            },
            creator_id: num(CREATOR_ID),
            commission_id: num(COMMISSION_ID),
            name: notes.get(NAME).cloned().unwrap_or_default(),
            message: notes.get(MESSAGE).cloned().unwrap_or_default(),
        }
    }
}

const TYPE: &str = "type";
const USER_ID: &str = "userID";
const USERNAME: &str = "username";
const TIER_ID: &str = "tierID";
const CREATOR_ID: &str = "creatorID";
const COMMISSION_ID: &str = "commissionID";
const NAME: &str = "name";
const MESSAGE: &str = "message";
const REQUEST_ID: &str = "requestID";
const DESCRIPTION: &str = "description";
const CONTACT_DETAILS: &str = "contactDetails";
const STATUS: &str = "status";
const MODE_OF_DELIVERY: &str = "mode_of_delivery";
/// The seed's `status` note of a commission: what the payment makes of the request.
const STATUS_ORDERED: &str = "ordered";
const PERIOD: &str = "period";

const TYPE_MEMBERSHIP: &str = "subscription";
const TYPE_CHEER: &str = "cheer";
const TYPE_COMMISSION: &str = "commission";

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl CheckoutNotes {
    /// The notes to send to Razorpay.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        match self {
            Self::Recurring {
                payer,
                tier_id,
                period,
            } => {
                put(TYPE, TYPE_MEMBERSHIP.into());
                put(USER_ID, payer.lookup_key());
                put(TIER_ID, tier_id.to_string());
                if *period != BillingPeriod::Monthly {
                    put(PERIOD, period.as_str().into());
                }
            }
            Self::OneTime {
                payer,
                username,
                tier_id,
            } => {
                put(TYPE, TYPE_MEMBERSHIP.into());
                put(USER_ID, payer.lookup_key());
                if let Some(u) = username {
                    put(USERNAME, u.clone());
                }
                put(TIER_ID, tier_id.to_string());
            }
            Self::Cheer {
                creator_id,
                payer,
                name,
                message,
            } => {
                put(TYPE, TYPE_CHEER.into());
                put(CREATOR_ID, creator_id.to_string());
                if let Some(p) = payer {
                    put(USERNAME, p.lookup_key());
                }
                put(NAME, cut(name, NOTE_NAME_CHARS));
                put(MESSAGE, cut(message, NOTE_MESSAGE_CHARS));
            }
            Self::Commission {
                creator_id,
                payer,
                commission_id,
                request,
            } => {
                put(TYPE, TYPE_COMMISSION.into());
                put(CREATOR_ID, creator_id.to_string());
                if let Some(p) = payer {
                    put(USERNAME, cut(&p.lookup_key(), NOTE_VALUE_CHARS));
                }
                put(COMMISSION_ID, commission_id.to_string());
                if let Some(r) = request {
                    put(REQUEST_ID, r.request_id.to_string());
                    put(DESCRIPTION, cut(&r.description, NOTE_VALUE_CHARS));
                    put(CONTACT_DETAILS, cut(&r.contact_details, NOTE_VALUE_CHARS));
                    put(STATUS, STATUS_ORDERED.into());
                    put(MODE_OF_DELIVERY, cut(&r.mode_of_delivery, NOTE_VALUE_CHARS));
                }
            }
        }
        m
    }

    /// Reads the notes of a subscription or an order.
    pub fn parse(on: NotesOn, notes: &BTreeMap<String, String>) -> Result<Self, NotesError> {
        let get = |k: &str| notes.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let num = |k: &'static str| -> Result<i64, NotesError> {
            get(k)
                .ok_or(NotesError::Missing(k))?
                .parse::<i64>()
                .map_err(|_| NotesError::NotANumber(k))
        };
        // An order's payer: the username when written (the seed), else the id.
        let order_payer = || {
            get(USERNAME)
                .or_else(|| get(USER_ID))
                .and_then(Payer::parse)
        };
        match get(TYPE).ok_or(NotesError::MissingType)? {
            TYPE_MEMBERSHIP => {
                let tier_id = num(TIER_ID)?;
                match on {
                    NotesOn::Subscription => Ok(Self::Recurring {
                        payer: get(USER_ID)
                            .or_else(|| get(USERNAME))
                            .and_then(Payer::parse)
                            .ok_or(NotesError::Missing(USER_ID))?,
                        tier_id,
                        period: match get(PERIOD) {
                            None => BillingPeriod::Monthly,
                            Some(p) => BillingPeriod::parse(p)
                                .ok_or(NotesError::UnknownPeriod(p.to_owned()))?,
                        },
                    }),
                    NotesOn::Order => Ok(Self::OneTime {
                        payer: order_payer().ok_or(NotesError::Missing(USER_ID))?,
                        username: get(USERNAME).map(str::to_owned),
                        tier_id,
                    }),
                }
            }
            TYPE_CHEER if on == NotesOn::Order => Ok(Self::Cheer {
                creator_id: num(CREATOR_ID)?,
                payer: order_payer(),
                name: get(NAME).unwrap_or_default().to_owned(),
                message: notes.get(MESSAGE).cloned().unwrap_or_default(),
            }),
            TYPE_COMMISSION if on == NotesOn::Order => Ok(Self::Commission {
                creator_id: num(CREATOR_ID)?,
                payer: order_payer(),
                commission_id: num(COMMISSION_ID)?,
                request: match get(REQUEST_ID) {
                    None => None,
                    Some(r) => Some(CommissionRequestNotes {
                        request_id: r.parse().map_err(|_| NotesError::NotANumber(REQUEST_ID))?,
                        description: notes.get(DESCRIPTION).cloned().unwrap_or_default(),
                        contact_details: notes.get(CONTACT_DETAILS).cloned().unwrap_or_default(),
                        mode_of_delivery: notes.get(MODE_OF_DELIVERY).cloned().unwrap_or_default(),
                    }),
                },
            }),
            TYPE_CHEER => Err(NotesError::NotOnSubscription(TYPE_CHEER)),
            TYPE_COMMISSION => Err(NotesError::NotOnSubscription(TYPE_COMMISSION)),
            other => Err(NotesError::UnknownType(other.to_owned())),
        }
    }

    /// The `type` note as written (`subscription`, `cheer`, `commission`, or anything else),
    /// whatever the other notes hold: what an order unknown locally is judged by.
    pub fn type_note(notes: &BTreeMap<String, String>) -> Option<&str> {
        notes.get(TYPE).map(String::as_str)
    }

    /// The kind of order a `type` note names on an order (`subscription` is a one-time tier
    /// purchase there); `None` for anything else.
    pub fn order_kind_of_type(type_note: &str) -> Option<OrderKind> {
        match type_note {
            TYPE_MEMBERSHIP => Some(OrderKind::OneTime),
            TYPE_CHEER => Some(OrderKind::Cheer),
            TYPE_COMMISSION => Some(OrderKind::Commission),
            _ => None,
        }
    }

    /// The kind of order these notes describe (`None` for a recurring membership).
    pub fn order_kind(&self) -> Option<OrderKind> {
        match self {
            Self::Recurring { .. } => None,
            Self::OneTime { .. } => Some(OrderKind::OneTime),
            Self::Cheer { .. } => Some(OrderKind::Cheer),
            Self::Commission { .. } => Some(OrderKind::Commission),
        }
    }

    /// The tier paid for, if any.
    pub fn tier_id(&self) -> Option<i64> {
        match self {
            Self::Recurring { tier_id, .. } | Self::OneTime { tier_id, .. } => Some(*tier_id),
            _ => None,
        }
    }

    /// Who pays, if the notes say.
    pub fn payer(&self) -> Option<&Payer> {
        match self {
            Self::Recurring { payer, .. } | Self::OneTime { payer, .. } => Some(payer),
            Self::Cheer { payer, .. } | Self::Commission { payer, .. } => payer.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> BTreeMap<String, String> {
        // As the Razorpay client reads notes: every value becomes a string.
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }

    /// The notes of the payloads in the Django predecessor's README.
    #[test]
    fn seed_readme_payloads() {
        assert_eq!(
            CheckoutNotes::parse(
                NotesOn::Subscription,
                &map(r#"{"type": "subscription", "userID": "anshulyadav", "tierID": "4"}"#)
            ),
            Ok(CheckoutNotes::Recurring {
                payer: Payer::Username("anshulyadav".into()),
                tier_id: 4,
                period: BillingPeriod::Monthly,
            })
        );
        assert_eq!(
            CheckoutNotes::parse(
                NotesOn::Order,
                &map(r#"{"type": "subscription", "username": "usingla78", "tierID":"7"}"#)
            ),
            Ok(CheckoutNotes::OneTime {
                payer: Payer::Username("usingla78".into()),
                username: Some("usingla78".into()),
                tier_id: 7
            })
        );
        assert_eq!(
            CheckoutNotes::parse(
                NotesOn::Order,
                &map(
                    r#"{"type": "cheer", "creatorID": "11","username":"usingla78", "name":"Utsav", "message":"check"}"#
                )
            ),
            Ok(CheckoutNotes::Cheer {
                creator_id: 11,
                payer: Some(Payer::Username("usingla78".into())),
                name: "Utsav".into(),
                message: "check".into()
            })
        );
        let commission = CheckoutNotes::parse(
            NotesOn::Order,
            &map(
                r#"{"type": "commission", "creatorID": "11","username":"usingla78", "commissionID":1, "description":"Utsav", "contactDetails":"somedetails", "status":"ordered","mode_of_delivery":"1"}"#,
            ),
        );
        assert_eq!(
            commission,
            Ok(CheckoutNotes::Commission {
                creator_id: 11,
                payer: Some(Payer::Username("usingla78".into())),
                commission_id: 1,
                request: None,
            })
        );
        assert_eq!(
            commission.unwrap().order_kind(),
            Some(OrderKind::Commission)
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        let cases = [
            (
                NotesOn::Subscription,
                CheckoutNotes::Recurring {
                    payer: Payer::Id(42),
                    tier_id: 7,
                    period: BillingPeriod::Monthly,
                },
            ),
            (
                NotesOn::Subscription,
                CheckoutNotes::Recurring {
                    payer: Payer::Id(42),
                    tier_id: 7,
                    period: BillingPeriod::Yearly,
                },
            ),
            (
                NotesOn::Order,
                CheckoutNotes::OneTime {
                    payer: Payer::Username("fan".into()),
                    username: Some("fan".into()),
                    tier_id: 7,
                },
            ),
            (
                NotesOn::Order,
                CheckoutNotes::Cheer {
                    creator_id: 3,
                    payer: Some(Payer::Username("fan".into())),
                    name: "Fan".into(),
                    message: "hi".into(),
                },
            ),
            (
                NotesOn::Order,
                CheckoutNotes::Commission {
                    creator_id: 3,
                    payer: Some(Payer::Username("fan".into())),
                    commission_id: 9,
                    request: None,
                },
            ),
            (
                NotesOn::Order,
                CheckoutNotes::Commission {
                    creator_id: 3,
                    payer: Some(Payer::Username("fan".into())),
                    commission_id: 9,
                    request: Some(CommissionRequestNotes {
                        request_id: 12,
                        description: "a cat".into(),
                        contact_details: "@fan".into(),
                        mode_of_delivery: "1".into(),
                    }),
                },
            ),
        ];
        for (on, notes) in cases {
            assert_eq!(CheckoutNotes::parse(on, &notes.to_map()), Ok(notes));
        }
    }

    #[test]
    fn written_keys_are_the_seeds() {
        let m = CheckoutNotes::OneTime {
            payer: Payer::Id(5),
            username: Some("fan".into()),
            tier_id: 2,
        }
        .to_map();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["tierID", "type", "userID", "username"]);
        assert_eq!(m["type"], "subscription");
        let long = "é".repeat(400);
        let m = CheckoutNotes::Cheer {
            creator_id: 1,
            payer: None,
            name: long.clone(),
            message: long,
        }
        .to_map();
        assert_eq!(m["name"].chars().count(), NOTE_NAME_CHARS);
        assert_eq!(m["message"].chars().count(), NOTE_MESSAGE_CHARS);
        assert!(!m.contains_key("username"));
        // A commission's notes are the seed's Commission payload, each value within 256.
        let m = CheckoutNotes::Commission {
            creator_id: 11,
            payer: Some(Payer::Username("fan".into())),
            commission_id: 1,
            request: Some(CommissionRequestNotes {
                request_id: 5,
                description: "d".repeat(300),
                contact_details: "c".into(),
                mode_of_delivery: "1".into(),
            }),
        }
        .to_map();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "commissionID",
                "contactDetails",
                "creatorID",
                "description",
                "mode_of_delivery",
                "requestID",
                "status",
                "type",
                "username"
            ]
        );
        assert_eq!(m["status"], "ordered");
        assert_eq!(m["description"].chars().count(), NOTE_VALUE_CHARS);
    }

    #[test]
    fn foreign_or_broken_notes_are_errors() {
        let parse = |on, j: &str| CheckoutNotes::parse(on, &map(j));
        assert_eq!(parse(NotesOn::Order, "{}"), Err(NotesError::MissingType));
        assert_eq!(
            parse(NotesOn::Order, r#"{"type": "donation"}"#),
            Err(NotesError::UnknownType("donation".into()))
        );
        assert_eq!(
            parse(
                NotesOn::Order,
                r#"{"type": "subscription", "userID": "5", "tierID": "x"}"#
            ),
            Err(NotesError::NotANumber("tierID"))
        );
        assert_eq!(
            parse(
                NotesOn::Subscription,
                r#"{"type": "subscription", "tierID": "3"}"#
            ),
            Err(NotesError::Missing("userID"))
        );
        assert_eq!(
            parse(
                NotesOn::Subscription,
                r#"{"type": "cheer", "creatorID": "3"}"#
            ),
            Err(NotesError::NotOnSubscription("cheer"))
        );
        assert_eq!(
            parse(
                NotesOn::Order,
                r#"{"type": "commission", "creatorID": "3"}"#
            ),
            Err(NotesError::Missing("commissionID"))
        );
    }

    #[test]
    fn fields_of_partial_notes_are_read_one_by_one() {
        // A seed subscription: no `type`, the user by name.
        let f = NoteFields::read(
            NotesOn::Subscription,
            &map(r#"{"userID": "fan", "tierID": " 12 "}"#),
        );
        assert_eq!(f.payer, Some(Payer::Username("fan".into())));
        assert_eq!(f.tier_id, Some(12));
        assert!(CheckoutNotes::parse(
            NotesOn::Subscription,
            &map(r#"{"userID": "fan", "tierID": "12"}"#)
        )
        .is_err());
        // On an order the username wins; a cheer lacking its creator still has its message.
        let f = NoteFields::read(
            NotesOn::Order,
            &map(
                r#"{"type": "cheer", "username": "bob", "userID": 7, "name": " Bob ", "message": "hi"}"#,
            ),
        );
        assert_eq!(f.payer, Some(Payer::Username("bob".into())));
        assert_eq!(
            (f.creator_id, f.name.as_str(), f.message.as_str()),
            (None, " Bob ", "hi")
        );
        assert_eq!(
            CheckoutNotes::order_kind_of_type("subscription"),
            Some(OrderKind::OneTime)
        );
        assert_eq!(
            CheckoutNotes::order_kind_of_type("cheer"),
            Some(OrderKind::Cheer)
        );
        assert_eq!(CheckoutNotes::order_kind_of_type("tip"), None);
    }
}
