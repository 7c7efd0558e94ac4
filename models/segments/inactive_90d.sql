-- One row per customer known for more than var('inactive_days') days with no order, no
-- email open or click and no web session in the last var('inactive_days') days.
with customers as (
    select * from {{ ref('dim_customers') }}
),

engagement as (
    select * from {{ ref('customer_engagement') }}
),

known as (
    select
        customer_id,
        last_order_at,
        coalesce(signup_at, first_order_at) as known_since
    from customers
),

final as (
    select
        known.customer_id,
        'inactive_90d' as segment_name,
        {{ dbt.concat(["'no order, email open/click or session in " ~ var('inactive_days') ~ "d; last_order_at='", "coalesce(cast(known.last_order_at as " ~ dbt.type_string() ~ "), 'never')"]) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from known
    inner join engagement
        on known.customer_id = engagement.customer_id
    where known.known_since < {{ segwise.window_start('day', var('inactive_days')) }}
        and (known.last_order_at is null or known.last_order_at < {{ segwise.window_start('day', var('inactive_days')) }})
        and (engagement.last_email_open_at is null or engagement.last_email_open_at < {{ segwise.window_start('day', var('inactive_days')) }})
        and (engagement.last_email_click_at is null or engagement.last_email_click_at < {{ segwise.window_start('day', var('inactive_days')) }})
        and engagement.web_sessions_90d = 0
)

select * from final
