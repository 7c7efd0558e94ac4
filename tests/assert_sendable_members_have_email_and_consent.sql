-- The activation feed never marks a member sendable without an email and a current
-- consent, or with an unsubscribe, bounce or complaint (staged or quarantined, by id or
-- by email) dated at or after that consent, or undated. Returns the offending rows. A
-- trigger refresh checks the rows of the segments it refreshed.
with feed as (
    select * from {{ ref('sync_esp_members') }}
    {{- segwise.where_refreshed() }}
),

consent as (
    select * from {{ ref('customer_consent') }}
),

events as (
    select * from {{ ref('base_email__events') }}
    where event_type in ('unsubscribe', 'bounce', 'complaint')
),

-- by id or by email: two equi-joins (a join on "a or b" is a nested loop on PostgreSQL)
withdrawals as (
    select
        feed.membership_id,
        events.occurred_at
    from feed
    inner join events
        on feed.customer_id = events.customer_id
    union all
    select
        feed.membership_id,
        events.occurred_at
    from feed
    inner join events
        on feed.email = events.email
)

select feed.membership_id
from feed
left join consent on feed.customer_id = consent.customer_id
where feed.is_sendable
    and (
        feed.email is null
        or not coalesce(consent.has_email_consent, false)
        or exists (
            select 1
            from withdrawals
            where withdrawals.membership_id = feed.membership_id
                and (
                    withdrawals.occurred_at is null
                    or consent.latest_signal_at is null
                    or withdrawals.occurred_at >= consent.latest_signal_at
                )
        )
    )
