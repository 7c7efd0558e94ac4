-- The sync feed never marks a member sendable without an email and email consent, or
-- with an unsubscribe, bounce or complaint on record. Returns the offending rows.
with feed as (
    select * from {{ ref('sync_esp_members') }}
),

engagement as (
    select * from {{ ref('customer_engagement') }}
)

select feed.membership_id
from feed
left join engagement on feed.customer_id = engagement.customer_id
where feed.is_sendable
    and (
        feed.email is null
        or not feed.has_email_consent
        or engagement.last_unsubscribe_at is not null
        or engagement.last_bounce_at is not null
        or engagement.last_complaint_at is not null
    )
