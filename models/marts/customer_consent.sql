-- One row per CRM customer: may segwise email them? The only place consent is decided.
--
-- Every signal counts, as known when this view is read (never as of the as-of date):
--   * every raw CRM row, quarantined ones included (a withdrawal on a row with a malformed
--     email is still a withdrawal), matched to the customer by id or by email;
--   * every raw email event — quarantined (no customer id, unknown type, duplicate, bad
--     timestamp) or not — of type unsubscribe, complaint or bounce (spelling variants are
--     mapped in staging), matched by customer id or by email;
--   * what ESPs reported as unsubscribed or cleaned (ops, never undone) and erasure
--     requests (ops, by SHA-256) — a view, so a sync sees them the moment they are written.
-- The latest signal wins. A "yes" is dated by when consent was given (email_consent_at,
-- if plausible; else it loses to any "no"); a "no" by when it was recorded; a "no" with
-- no plausible date counts as the latest of all; on a tie, "no" wins.
{{ config(materialized='view') }}

with contacts as (
    select * from {{ ref('base_crm__contacts') }}
),

email_events as (
    select * from {{ ref('base_email__events_typed') }}
),

customers as (
    select * from {{ ref('stg_crm__contacts') }}
),

esp_suppressions as (
    select * from {{ ref('stg_segwise_ops__destination_suppressions') }}
),

erasures as (
    select * from {{ ref('stg_segwise_ops__erasure_requests') }}
),

crm_signals as (
    select
        customer_id,
        email,
        case when has_email_consent then 'consent' else 'no_consent' end as signal,
        case
            when has_email_consent then
                case
                    when not {{ segwise.is_future('email_consent_at') }}
                        and not {{ segwise.is_implausible_ts('email_consent_at') }}
                        then email_consent_at
                end
            else
                case
                    when not {{ segwise.is_future('updated_at') }}
                        and not {{ segwise.is_implausible_ts('updated_at') }}
                        then updated_at
                end
        end as signal_at
    from contacts
),

event_signals as (
    select
        customer_id,
        email,
        case event_type
            when 'unsubscribe' then 'unsubscribed'
            when 'complaint' then 'complained'
            when 'bounce' then 'bounced'
        end as signal,
        case
            when not {{ segwise.is_future('occurred_at') }}
                and not {{ segwise.is_implausible_ts('occurred_at') }}
                then occurred_at
        end as signal_at
    from email_events
    where event_type in ('unsubscribe', 'complaint', 'bounce')
),

signals as (
    select * from crm_signals
    union all
    select * from event_signals
),

customer_signals as (
    -- a signal belongs to a customer by id; a withdrawal also by (normalised) email — a
    -- "yes" only ever from the customer's own rows. Two joins, not an or.
    select
        customers.customer_id,
        signals.signal,
        signals.signal_at
    from customers
    inner join signals
        on customers.customer_id = signals.customer_id
    union all
    select
        customers.customer_id,
        signals.signal,
        signals.signal_at
    from customers
    inner join signals
        on customers.email = signals.email
        and signals.signal <> 'consent'
        and (signals.customer_id is null or signals.customer_id <> customers.customer_id)
),

ranked as (
    select
        customer_id,
        signal,
        signal_at,
        row_number() over (
            partition by customer_id
            order by
                -- an undated "no" is the latest of all; an undated "yes" the earliest
                case when signal_at is null and signal <> 'consent' then 1 else 0 end desc,
                signal_at desc nulls last,
                -- ties: a "no" wins, the strongest first
                case signal
                    when 'complained' then 1
                    when 'unsubscribed' then 2
                    when 'bounced' then 3
                    when 'no_consent' then 4
                    else 5
                end
        ) as signal_rank
    from customer_signals
),

latest as (
    select
        customer_id,
        signal,
        signal_at
    from ranked
    where signal_rank = 1
),

decided as (
    select
        customers.customer_id,
        customers.email,
        latest.signal as latest_signal,
        latest.signal_at as latest_signal_at,
        esp_suppressions.remote_status as esp_status,
        case
            when erasures.email_sha256 is not null then 'erased'
            when customers.email is null then 'no_email'
            when esp_suppressions.email is not null then
                case when esp_suppressions.remote_status = 'cleaned' then 'bounced' else 'unsubscribed' end
            when latest.signal is null then 'no_consent'
            when latest.signal <> 'consent' then latest.signal
        end as exclusion_reason
    from customers
    left join latest
        on customers.customer_id = latest.customer_id
    left join esp_suppressions
        on customers.email = esp_suppressions.email
    left join erasures
        on {{ segwise.sha256_hex('customers.email') }} = erasures.email_sha256
),

final as (
    select
        customer_id,
        email,
        coalesce(latest_signal = 'consent', false) as has_email_consent,
        latest_signal,
        latest_signal_at,
        esp_status,
        exclusion_reason,
        exclusion_reason is null as is_sendable,
        -- the person said no (or never said yes): every destination that holds them must
        -- unsubscribe them through its own API, not only drop them from a list. Not for a
        -- bounce (the ESP cleans it), an erasure (deleted instead) or a missing address.
        coalesce(exclusion_reason in ('no_consent', 'unsubscribed', 'complained'), false)
            as must_unsubscribe
    from decided
)

select * from final
