-- One row per customer in dim_customers: email and web engagement as of the as-of time,
-- and an engagement tier (thresholds are vars, documented in _marts__models.yml).
with customers as (
    select * from {{ ref('dim_customers') }}
),

email_activity as (
    select * from {{ ref('int_email_events_aggregated_to_customers') }}
),

sessions as (
    select * from {{ ref('int_events_sessionized') }}
),

web_events as (
    select * from {{ ref('int_web_events_identified') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

web_activity as (
    select
        customer_id,
        sum(case when session_started_at >= {{ segwise.window_start('day', 30) }} then 1 else 0 end) as web_sessions_30d,
        sum(case when session_started_at >= {{ segwise.window_start('day', 90) }} then 1 else 0 end) as web_sessions_90d,
        max(session_started_at) as last_session_at
    from sessions
    where customer_id is not null
    group by customer_id
),

product_views as (
    select
        customer_id,
        count(*) as product_views_30d
    from web_events
    where customer_id is not null
        and event_type = 'product_view'
        and occurred_at >= {{ segwise.window_start('day', 30) }}
    group by customer_id
),

cart_adds as (
    select
        web_events.customer_id,
        web_events.occurred_at as added_at
    from web_events
    where web_events.customer_id is not null
        and web_events.event_type = 'add_to_cart'
        and web_events.occurred_at >= {{ segwise.window_start('day', 30) }}
),

cart_adds_unconverted as (
    select
        cart_adds.customer_id,
        count(*) as cart_adds_without_purchase_30d
    from cart_adds
    where not exists (
        select 1
        from orders
        where orders.customer_id = cart_adds.customer_id
            and orders.ordered_at >= cart_adds.added_at
            and orders.ordered_at <= {{ dbt.dateadd('hour', var('cart_abandon_window_hours'), 'cart_adds.added_at') }}
    )
    group by cart_adds.customer_id
),

joined as (
    select
        customers.customer_id,
        coalesce(email_activity.email_sends_30d, 0) as email_sends_30d,
        coalesce(email_activity.email_opens_30d, 0) as email_opens_30d,
        coalesce(email_activity.email_clicks_30d, 0) as email_clicks_30d,
        coalesce(email_activity.email_sends_90d, 0) as email_sends_90d,
        coalesce(email_activity.email_opens_90d, 0) as email_opens_90d,
        coalesce(email_activity.email_clicks_90d, 0) as email_clicks_90d,
        email_activity.last_email_open_at,
        email_activity.last_email_click_at,
        email_activity.last_unsubscribe_at,
        email_activity.last_bounce_at,
        email_activity.last_complaint_at,
        coalesce(web_activity.web_sessions_30d, 0) as web_sessions_30d,
        coalesce(web_activity.web_sessions_90d, 0) as web_sessions_90d,
        web_activity.last_session_at,
        coalesce(product_views.product_views_30d, 0) as product_views_30d,
        coalesce(cart_adds_unconverted.cart_adds_without_purchase_30d, 0) as cart_adds_without_purchase_30d
    from customers
    left join email_activity
        on customers.customer_id = email_activity.customer_id
    left join web_activity
        on customers.customer_id = web_activity.customer_id
    left join product_views
        on customers.customer_id = product_views.customer_id
    left join cart_adds_unconverted
        on customers.customer_id = cart_adds_unconverted.customer_id
),

final as (
    select
        *,
        case when email_sends_30d > 0 then cast(email_opens_30d as {{ dbt.type_float() }}) / email_sends_30d end as email_open_rate_30d,
        case when email_sends_30d > 0 then cast(email_clicks_30d as {{ dbt.type_float() }}) / email_sends_30d end as email_click_rate_30d,
        case when email_sends_90d > 0 then cast(email_opens_90d as {{ dbt.type_float() }}) / email_sends_90d end as email_open_rate_90d,
        case when email_sends_90d > 0 then cast(email_clicks_90d as {{ dbt.type_float() }}) / email_sends_90d end as email_click_rate_90d,
        case
            when (email_opens_30d >= {{ var('engagement_high_min_opens_30d') }}
                  and email_clicks_30d >= {{ var('engagement_high_min_clicks_30d') }})
                or web_sessions_30d >= {{ var('engagement_high_min_sessions_30d') }}
                then 'high'
            when email_opens_90d >= {{ var('engagement_medium_min_opens_90d') }}
                or web_sessions_30d >= {{ var('engagement_medium_min_sessions_30d') }}
                then 'medium'
            when email_sends_90d > 0 or web_sessions_90d > 0
                then 'low'
            else 'inactive'
        end as engagement_tier
    from joined
)

select * from final
