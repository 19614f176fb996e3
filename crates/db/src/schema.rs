// @generated automatically by Diesel CLI.

diesel::table! {
    use diesel::sql_types::*;

    auth_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        key_hash -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    bank_details (user_id) {
        user_id -> Int8,
        nonce -> Bytea,
        ciphertext -> Bytea,
        key_version -> Int2,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_changes (id) {
        id -> Int8,
        membership_id -> Int8,
        from_tier_id -> Int8,
        to_tier_id -> Int8,
        razorpay_subscription_id -> Text,
        to_plan_id -> Text,
        method -> Text,
        effective -> Text,
        state -> Text,
        from_amount -> Int8,
        to_amount -> Int8,
        currency -> Text,
        charge_now -> Int8,
        charge_min -> Int8,
        charge_payment_id -> Nullable<Text>,
        effective_at -> Timestamptz,
        new_membership_id -> Nullable<Int8>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_hiatus_members (hiatus_id, membership_id) {
        hiatus_id -> Int8,
        membership_id -> Int8,
        razorpay_subscription_id -> Text,
        state -> Text,
        last_error -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_hiatuses (id) {
        id -> Int8,
        creator_id -> Int8,
        cycles -> Int4,
        state -> Text,
        started_at -> Timestamptz,
        resumes_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_orders (id) {
        id -> Int8,
        razorpay_order_id -> Text,
        kind -> Text,
        status -> Text,
        user_id -> Nullable<Int8>,
        creator_id -> Nullable<Int8>,
        tier_id -> Nullable<Int8>,
        reference_id -> Nullable<Int8>,
        amount -> Int8,
        currency -> Text,
        name -> Text,
        message -> Text,
        notes -> Jsonb,
        razorpay_payment_id -> Nullable<Text>,
        paid_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        message_confirmed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_pauses (id) {
        id -> Int8,
        membership_id -> Int8,
        razorpay_subscription_id -> Text,
        cycles -> Int4,
        state -> Text,
        pause_at -> Timestamptz,
        resume_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_payment_flags (id) {
        id -> Int8,
        razorpay_payment_id -> Text,
        reason -> Text,
        expected_amount -> Int8,
        expected_currency -> Text,
        actual_amount -> Int8,
        actual_currency -> Text,
        user_id -> Nullable<Int8>,
        creator_id -> Nullable<Int8>,
        membership_id -> Nullable<Int8>,
        order_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_plans (tier_id, period, amount, currency) {
        tier_id -> Int8,
        amount -> Int8,
        currency -> Text,
        razorpay_plan_id -> Text,
        created_at -> Timestamptz,
        period -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_refunds (id) {
        id -> Int8,
        razorpay_payment_id -> Text,
        idempotency_key -> Text,
        amount -> Int8,
        currency -> Text,
        reason -> Text,
        user_id -> Nullable<Int8>,
        creator_id -> Nullable<Int8>,
        tier_id -> Nullable<Int8>,
        membership_id -> Nullable<Int8>,
        order_id -> Nullable<Int8>,
        status -> Text,
        razorpay_refund_id -> Nullable<Text>,
        razorpay_refund_status -> Nullable<Text>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        claimed_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_subscription_cancellations (razorpay_subscription_id) {
        razorpay_subscription_id -> Text,
        membership_id -> Nullable<Int8>,
        reason -> Text,
        status -> Text,
        attempts -> Int4,
        outcome -> Nullable<Text>,
        requested_at -> Timestamptz,
        attempted_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_trial_instruments (creator_id, fingerprint) {
        creator_id -> Int8,
        fingerprint -> Bytea,
        membership_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    billing_webhook_events (id) {
        id -> Int8,
        event_id -> Text,
        event -> Text,
        body -> Bytea,
        received_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    comments (id) {
        id -> Int8,
        post_id -> Int8,
        user_id -> Int8,
        text -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    commission_delivery_files (request_id, media_id) {
        request_id -> Int8,
        media_id -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    commission_request_history (id) {
        id -> Int8,
        request_id -> Int8,
        status -> Text,
        by_user -> Nullable<Int8>,
        message -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    commission_requests (id) {
        id -> Int8,
        commission_id -> Int8,
        fan_id -> Int8,
        creator_id -> Int8,
        description -> Text,
        contact_details -> Text,
        mode_of_delivery -> Text,
        status -> Text,
        amount -> Int8,
        currency -> Text,
        razorpay_order_id -> Nullable<Text>,
        razorpay_payment_id -> Nullable<Text>,
        hold_until -> Timestamptz,
        paid_at -> Nullable<Timestamptz>,
        deliver_by -> Nullable<Timestamptz>,
        delivered_at -> Nullable<Timestamptz>,
        delivery_message -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    commissions (id) {
        id -> Int8,
        creator_id -> Int8,
        title -> Text,
        description -> Text,
        price -> Int8,
        currency -> Text,
        delivery_days -> Int4,
        slots -> Int4,
        is_open -> Bool,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    creator_post_counts (creator_id) {
        creator_id -> Int8,
        posts -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    email_confirmations (id) {
        id -> Int8,
        user_id -> Int8,
        email -> Text,
        key_hash -> Nullable<Bytea>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    follows (id) {
        id -> Int8,
        follower_id -> Int8,
        creator_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    idempotency_keys (user_id, key) {
        user_id -> Int8,
        key -> Text,
        request_hash -> Text,
        response_status -> Nullable<Int2>,
        response_body -> Nullable<Bytea>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    identity_mail_log (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        sent_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    jobs (id) {
        id -> Int8,
        kind -> Text,
        payload -> Jsonb,
        run_at -> Timestamptz,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        done_at -> Nullable<Timestamptz>,
        dead_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    ledger_accounts (razorpay_payment_id) {
        razorpay_payment_id -> Text,
        creator_id -> Int8,
        source -> Text,
        currency -> Text,
        gross -> Int8,
        gateway_fee -> Int8,
        platform_fee -> Int8,
        net -> Int8,
        refunded -> Int8,
        bucket -> Text,
        hold_reason -> Nullable<Text>,
        hold_until -> Nullable<Timestamptz>,
        disputed_from -> Nullable<Text>,
        captured_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    ledger_entries (id) {
        id -> Int8,
        posting_id -> Int8,
        creator_id -> Int8,
        currency -> Text,
        account -> Text,
        amount -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    ledger_postings (id) {
        id -> Int8,
        key -> Text,
        razorpay_payment_id -> Nullable<Text>,
        creator_id -> Int8,
        currency -> Text,
        kind -> Text,
        gross -> Int8,
        gateway_fee -> Int8,
        platform_fee -> Int8,
        net -> Int8,
        reference -> Nullable<Text>,
        posted_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    likes (id) {
        id -> Int8,
        post_id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    login_failures (id) {
        id -> Int8,
        scope -> Text,
        failed_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    media (id) {
        id -> Int8,
        owner_id -> Int8,
        sha256 -> Text,
        kind -> Text,
        content_type -> Text,
        size -> Int8,
        filename -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    memberships (id) {
        id -> Int8,
        user_id -> Int8,
        tier_id -> Int8,
        kind -> Text,
        status -> Text,
        amount -> Int8,
        currency -> Text,
        razorpay_subscription_id -> Nullable<Text>,
        razorpay_order_id -> Nullable<Text>,
        current_start -> Nullable<Timestamptz>,
        current_end -> Nullable<Timestamptz>,
        cancel_at_period_end -> Bool,
        ended_at -> Nullable<Timestamptz>,
        paid_count -> Int8,
        state_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        void_reason -> Nullable<Text>,
        period -> Text,
        trial_end -> Nullable<Timestamptz>,
        hiatus_id -> Nullable<Int8>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    notification_digests (user_id, day) {
        user_id -> Int8,
        day -> Date,
        first_id -> Int8,
        last_id -> Int8,
        posts -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    notification_settings (user_id, category) {
        user_id -> Int8,
        category -> Text,
        in_app -> Bool,
        email -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    notification_stream_tickets (ticket_hash) {
        ticket_hash -> Bytea,
        user_id -> Int8,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    notifications (id) {
        id -> Int8,
        recipient_id -> Int8,
        actor_id -> Nullable<Int8>,
        kind -> Text,
        verb -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Int8>,
        target_repr -> Nullable<Text>,
        action_object_type -> Nullable<Text>,
        action_object_id -> Nullable<Int8>,
        action_object_repr -> Nullable<Text>,
        post_id -> Nullable<Int8>,
        event_key -> Text,
        data -> Jsonb,
        unread -> Bool,
        created_at -> Timestamptz,
        shown -> Bool,
        emailed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    payments (id) {
        id -> Int8,
        razorpay_payment_id -> Text,
        kind -> Text,
        status -> Text,
        amount -> Int8,
        amount_refunded -> Int8,
        currency -> Text,
        user_id -> Nullable<Int8>,
        creator_id -> Nullable<Int8>,
        membership_id -> Nullable<Int8>,
        order_id -> Nullable<Int8>,
        razorpay_order_id -> Nullable<Text>,
        razorpay_subscription_id -> Nullable<Text>,
        notes -> Jsonb,
        paid_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    payout_accounts (creator_id) {
        creator_id -> Int8,
        razorpay_account_id -> Nullable<Text>,
        stakeholder_id -> Nullable<Text>,
        product_id -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    payout_transfers (id) {
        id -> Int8,
        razorpay_payment_id -> Text,
        creator_id -> Int8,
        attempt -> Int4,
        razorpay_account_id -> Text,
        amount -> Int8,
        currency -> Text,
        on_hold -> Bool,
        status -> Text,
        razorpay_transfer_id -> Nullable<Text>,
        error -> Nullable<Text>,
        reversal_id -> Nullable<Text>,
        settlement_id -> Nullable<Text>,
        utr -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    pending_changes (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        payload -> Bytea,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    post_attachments (post_id, media_id) {
        post_id -> Int8,
        media_id -> Int8,
        position -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    post_tiers (post_id, tier_id) {
        post_id -> Int8,
        tier_id -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    posts (id) {
        id -> Int8,
        creator_id -> Int8,
        title -> Text,
        body -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    refresh_tokens (jti) {
        jti -> Text,
        user_id -> Int8,
        family -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    social_accounts (id) {
        id -> Int8,
        user_id -> Int8,
        provider -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    tiers (id) {
        id -> Int8,
        creator_id -> Int8,
        name -> Text,
        description -> Text,
        price -> Int8,
        currency -> Text,
        benefits -> Jsonb,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        annual_price -> Nullable<Int8>,
        trial_days -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    users (id) {
        id -> Int8,
        username -> Text,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        password_hash -> Nullable<Text>,
        is_creator -> Bool,
        profile_pic -> Nullable<Text>,
        bio -> Text,
        login_type -> Text,
        email_verified -> Bool,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        credentials_changed_at -> Nullable<Timestamptz>,
        phone -> Nullable<Text>,
        session_epoch -> Int8,
    }
}

diesel::joinable!(auth_tokens -> users (user_id));
diesel::joinable!(bank_details -> users (user_id));
diesel::joinable!(billing_hiatus_members -> billing_hiatuses (hiatus_id));
diesel::joinable!(billing_hiatus_members -> memberships (membership_id));
diesel::joinable!(billing_hiatuses -> users (creator_id));
diesel::joinable!(billing_orders -> tiers (tier_id));
diesel::joinable!(billing_pauses -> memberships (membership_id));
diesel::joinable!(billing_payment_flags -> billing_orders (order_id));
diesel::joinable!(billing_payment_flags -> memberships (membership_id));
diesel::joinable!(billing_plans -> tiers (tier_id));
diesel::joinable!(billing_refunds -> billing_orders (order_id));
diesel::joinable!(billing_refunds -> memberships (membership_id));
diesel::joinable!(billing_refunds -> tiers (tier_id));
diesel::joinable!(billing_subscription_cancellations -> memberships (membership_id));
diesel::joinable!(billing_trial_instruments -> memberships (membership_id));
diesel::joinable!(billing_trial_instruments -> users (creator_id));
diesel::joinable!(comments -> posts (post_id));
diesel::joinable!(comments -> users (user_id));
diesel::joinable!(commission_delivery_files -> commission_requests (request_id));
diesel::joinable!(commission_delivery_files -> media (media_id));
diesel::joinable!(commission_request_history -> commission_requests (request_id));
diesel::joinable!(commission_request_history -> users (by_user));
diesel::joinable!(commission_requests -> commissions (commission_id));
diesel::joinable!(commissions -> users (creator_id));
diesel::joinable!(creator_post_counts -> users (creator_id));
diesel::joinable!(email_confirmations -> users (user_id));
diesel::joinable!(identity_mail_log -> users (user_id));
diesel::joinable!(ledger_entries -> ledger_postings (posting_id));
diesel::joinable!(likes -> posts (post_id));
diesel::joinable!(likes -> users (user_id));
diesel::joinable!(media -> users (owner_id));
diesel::joinable!(memberships -> billing_hiatuses (hiatus_id));
diesel::joinable!(memberships -> tiers (tier_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(notification_digests -> users (user_id));
diesel::joinable!(notification_settings -> users (user_id));
diesel::joinable!(notification_stream_tickets -> users (user_id));
diesel::joinable!(notifications -> posts (post_id));
diesel::joinable!(payments -> billing_orders (order_id));
diesel::joinable!(payments -> memberships (membership_id));
diesel::joinable!(pending_changes -> users (user_id));
diesel::joinable!(post_attachments -> media (media_id));
diesel::joinable!(post_attachments -> posts (post_id));
diesel::joinable!(post_tiers -> posts (post_id));
diesel::joinable!(post_tiers -> tiers (tier_id));
diesel::joinable!(posts -> users (creator_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(social_accounts -> users (user_id));
diesel::joinable!(tiers -> users (creator_id));

diesel::allow_tables_to_appear_in_same_query!(
    auth_tokens,
    bank_details,
    billing_changes,
    billing_hiatus_members,
    billing_hiatuses,
    billing_orders,
    billing_pauses,
    billing_payment_flags,
    billing_plans,
    billing_refunds,
    billing_subscription_cancellations,
    billing_trial_instruments,
    billing_webhook_events,
    comments,
    commission_delivery_files,
    commission_request_history,
    commission_requests,
    commissions,
    creator_post_counts,
    email_confirmations,
    follows,
    idempotency_keys,
    identity_mail_log,
    jobs,
    ledger_accounts,
    ledger_entries,
    ledger_postings,
    likes,
    login_failures,
    media,
    memberships,
    notification_digests,
    notification_settings,
    notification_stream_tickets,
    notifications,
    payments,
    payout_accounts,
    payout_transfers,
    pending_changes,
    post_attachments,
    post_tiers,
    posts,
    refresh_tokens,
    social_accounts,
    tiers,
    users,
);
