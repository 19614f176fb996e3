//! The storage port of the commissions services, implemented over PostgreSQL by
//! `oasis_db::commissions::PgCommissions` (each call inside the caller's transaction).
use crate::model::{ChangeRecord, NewRequest, Offering, OfferingFields, Request, RequestStatus};
use oasis_kernel::{RepoError, Timestamp};

pub trait CommissionStore {
    /// A user that exists and is a creator.
    fn is_creator(&mut self, user_id: i64) -> Result<bool, RepoError>;
    fn insert_offering(
        &mut self,
        creator_id: i64,
        f: &OfferingFields,
        now: Timestamp,
    ) -> Result<Offering, RepoError>;
    /// An offering that is not deleted.
    fn find_offering(&mut self, id: i64) -> Result<Option<Offering>, RepoError>;
    /// An offering that is not deleted, locked for the rest of the transaction: requests for
    /// it serialise here, so two fans cannot both take its last slot.
    fn lock_offering(&mut self, id: i64) -> Result<Option<Offering>, RepoError>;
    fn update_offering(
        &mut self,
        id: i64,
        f: &OfferingFields,
        now: Timestamp,
    ) -> Result<Offering, RepoError>;
    /// Marks it deleted (its past requests stay readable).
    fn delete_offering(&mut self, id: i64, now: Timestamp) -> Result<(), RepoError>;
    /// Requests of the offering in an active status ([`RequestStatus::is_active`]).
    fn count_active_requests(&mut self, commission_id: i64) -> Result<i64, RepoError>;
    /// Requests of the offering holding a slot at `now` ([`crate::rules::holds_slot`]).
    fn count_slot_holders(&mut self, commission_id: i64, now: Timestamp) -> Result<i64, RepoError>;
    /// Inserts an `awaiting_payment` request and its first history line (by the fan).
    fn insert_request(&mut self, r: &NewRequest) -> Result<Request, RepoError>;
    fn set_request_order(&mut self, id: i64, razorpay_order_id: &str) -> Result<(), RepoError>;
    /// Removes a request whose Razorpay order could not be made (nobody ever saw it).
    fn delete_request(&mut self, id: i64) -> Result<(), RepoError>;
    fn lock_request(&mut self, id: i64) -> Result<Option<Request>, RepoError>;
    fn lock_request_by_order(
        &mut self,
        razorpay_order_id: &str,
    ) -> Result<Option<Request>, RepoError>;
    /// Moves a request to `to`, writing what the change records and one history line.
    fn save_change(
        &mut self,
        id: i64,
        to: RequestStatus,
        by: Option<i64>,
        record: &ChangeRecord,
        now: Timestamp,
    ) -> Result<Request, RepoError>;
    /// How many of `media_ids` exist and were uploaded by `owner`.
    fn media_owned_by(&mut self, owner: i64, media_ids: &[i64]) -> Result<usize, RepoError>;
    /// Unpaid requests whose hold ended by `now` (at most `limit`; locked rows skipped).
    fn due_expiries(&mut self, now: Timestamp, limit: i64) -> Result<Vec<i64>, RepoError>;
    /// Delivered requests delivered at or before `delivered_before` (at most `limit`).
    fn due_completions(
        &mut self,
        delivered_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<i64>, RepoError>;
}
