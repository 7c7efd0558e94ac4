-- One row per customer with email activity up to the as-of time: counts per window.
with email_events as (
    select * from {{ ref('stg_email__events') }}
    where occurred_at < {{ segwise.as_of_ts() }}
),

final as (
    select
        customer_id,
        sum(case when event_type = 'sent' and occurred_at >= {{ segwise.window_start('day', 30) }} then 1 else 0 end) as email_sends_30d,
        sum(case when event_type = 'open' and occurred_at >= {{ segwise.window_start('day', 30) }} then 1 else 0 end) as email_opens_30d,
        sum(case when event_type = 'click' and occurred_at >= {{ segwise.window_start('day', 30) }} then 1 else 0 end) as email_clicks_30d,
        sum(case when event_type = 'sent' and occurred_at >= {{ segwise.window_start('day', 90) }} then 1 else 0 end) as email_sends_90d,
        sum(case when event_type = 'open' and occurred_at >= {{ segwise.window_start('day', 90) }} then 1 else 0 end) as email_opens_90d,
        sum(case when event_type = 'click' and occurred_at >= {{ segwise.window_start('day', 90) }} then 1 else 0 end) as email_clicks_90d,
        max(case when event_type = 'open' then occurred_at end) as last_email_open_at,
        max(case when event_type = 'click' then occurred_at end) as last_email_click_at,
        max(case when event_type = 'unsubscribe' then occurred_at end) as last_unsubscribe_at,
        max(case when event_type = 'bounce' then occurred_at end) as last_bounce_at,
        max(case when event_type = 'complaint' then occurred_at end) as last_complaint_at
    from email_events
    group by customer_id
)

select * from final
