-- Point-in-time churn features: one row per customer and cutoff, computed only from what
-- was known at that cutoff (orders on or before it, engagement in the windows ending at
-- it), and the label from the horizon after it. Three cutoffs, H = var('churn_horizon_days'):
--   train = as-of − 2H (label: no valid order in the following H days, i.e. before test),
--   test  = as-of − H  (label: no valid order in the H days ending at the as-of date),
--   score = as-of      (no label: the future).
-- At the score cutoff the RFM columns equal customer_rfm's (a singular test checks it).
{%- set horizon = var('churn_horizon_days') | int %}
{%- set train_cutoffs = var('churn_train_cutoffs') | int %}
{%- set spacing = var('churn_train_spacing_days') | int %}
with orders as (
    select * from {{ ref('fct_orders') }}
),

events as (
    select * from {{ ref('int_customer_events') }}
),

cutoffs as (
    select 'score' as split, {{ segwise.as_of_date() }} as cutoff_date
    union all
    select 'test' as split, cast({{ dbt.dateadd('day', -horizon, segwise.as_of_date()) }} as date) as cutoff_date
    {%- for j in range(train_cutoffs) %}
    union all
    select 'train' as split, cast({{ dbt.dateadd('day', -2 * horizon - j * spacing, segwise.as_of_date()) }} as date) as cutoff_date
    {%- endfor %}
),

order_days as (
    select
        customer_id,
        order_date,
        count(*) as day_orders,
        sum(order_amount) as day_amount
    from orders
    group by customer_id, order_date
),

activity_days as (
    -- email and web activity per customer and day (orders come from order_days)
    select
        customer_id,
        cast(occurred_at as date) as activity_date,
        sum(case when event_type = 'email_sent' then 1 else 0 end) as email_sends,
        sum(case when event_type = 'email_open' then 1 else 0 end) as email_opens,
        sum(case when event_type = 'email_click' then 1 else 0 end) as email_clicks,
        sum(case when event_type in ('page_view', 'product_view') then 1 else 0 end) as web_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_adds
    from events
    where event_type <> 'order'
    group by customer_id, cast(occurred_at as date)
),

order_history as (
    select
        cutoffs.split,
        cutoffs.cutoff_date,
        order_days.customer_id,
        min(order_days.order_date) as first_order_date,
        max(order_days.order_date) as last_order_date,
        count(*) as purchase_days,
        sum(order_days.day_orders) as orders_count,
        sum(order_days.day_amount) as monetary_total,
        sum(case when order_days.order_date > cast({{ dbt.dateadd('day', -30, 'cutoffs.cutoff_date') }} as date) then 1 else 0 end) as purchase_days_30d,
        sum(case when order_days.order_date > cast({{ dbt.dateadd('day', -90, 'cutoffs.cutoff_date') }} as date) then 1 else 0 end) as purchase_days_90d,
        sum(case when order_days.order_date > cast({{ dbt.dateadd('day', -180, 'cutoffs.cutoff_date') }} as date) then 1 else 0 end) as purchase_days_180d,
        sum(case when order_days.order_date > cast({{ dbt.dateadd('day', -365, 'cutoffs.cutoff_date') }} as date) then 1 else 0 end) as purchase_days_365d,
        sum(case when order_days.order_date > cast({{ dbt.dateadd('day', -90, 'cutoffs.cutoff_date') }} as date) then order_days.day_amount else 0 end) as monetary_90d,
        sum(case when order_days.order_date > cast({{ dbt.dateadd('day', -365, 'cutoffs.cutoff_date') }} as date) then order_days.day_amount else 0 end) as monetary_365d
    from cutoffs
    inner join order_days
        on order_days.order_date <= cutoffs.cutoff_date
    group by cutoffs.split, cutoffs.cutoff_date, order_days.customer_id
),

engagement_history as (
    select
        cutoffs.cutoff_date,
        activity_days.customer_id,
        sum(activity_days.email_sends) as email_sends_90d,
        sum(activity_days.email_opens) as email_opens_90d,
        sum(activity_days.email_clicks) as email_clicks_90d,
        sum(activity_days.web_views) as web_views_90d,
        sum(activity_days.cart_adds) as cart_adds_90d
    from cutoffs
    inner join activity_days
        on activity_days.activity_date <= cutoffs.cutoff_date
        and activity_days.activity_date > cast({{ dbt.dateadd('day', -90, 'cutoffs.cutoff_date') }} as date)
    group by cutoffs.cutoff_date, activity_days.customer_id
),

future_orders as (
    select
        cutoffs.cutoff_date,
        order_days.customer_id,
        count(*) as purchase_days_after
    from cutoffs
    inner join order_days
        on order_days.order_date > cutoffs.cutoff_date
        and order_days.order_date <= cast({{ dbt.dateadd('day', horizon, 'cutoffs.cutoff_date') }} as date)
    where cutoffs.split <> 'score'
    group by cutoffs.cutoff_date, order_days.customer_id
),

final as (
    select
        {{ dbt.concat(['cast(order_history.cutoff_date as ' ~ dbt.type_string() ~ ')', "':'", 'order_history.customer_id']) }} as churn_feature_id,
        order_history.split,
        order_history.cutoff_date,
        order_history.customer_id,
        cast({{ dbt.datediff('order_history.last_order_date', 'order_history.cutoff_date', 'day') }} as {{ dbt.type_bigint() }}) as recency_days,
        cast({{ dbt.datediff('order_history.first_order_date', 'order_history.cutoff_date', 'day') }} as {{ dbt.type_bigint() }}) as tenure_days,
        cast(order_history.purchase_days as {{ dbt.type_bigint() }}) as purchase_days,
        cast(order_history.orders_count as {{ dbt.type_bigint() }}) as orders_count,
        cast(order_history.monetary_total as {{ segwise.type_double() }}) as monetary_total,
        cast(order_history.monetary_total / order_history.purchase_days as {{ segwise.type_double() }}) as monetary_per_purchase_day,
        cast(order_history.purchase_days_30d as {{ dbt.type_bigint() }}) as purchase_days_30d,
        cast(order_history.purchase_days_90d as {{ dbt.type_bigint() }}) as purchase_days_90d,
        cast(order_history.purchase_days_180d as {{ dbt.type_bigint() }}) as purchase_days_180d,
        cast(order_history.purchase_days_365d as {{ dbt.type_bigint() }}) as purchase_days_365d,
        cast(order_history.monetary_90d as {{ segwise.type_double() }}) as monetary_90d,
        cast(order_history.monetary_365d as {{ segwise.type_double() }}) as monetary_365d,
        cast(coalesce(engagement_history.email_sends_90d, 0) as {{ dbt.type_bigint() }}) as email_sends_90d,
        cast(coalesce(engagement_history.email_opens_90d, 0) as {{ dbt.type_bigint() }}) as email_opens_90d,
        cast(coalesce(engagement_history.email_clicks_90d, 0) as {{ dbt.type_bigint() }}) as email_clicks_90d,
        cast(coalesce(engagement_history.web_views_90d, 0) as {{ dbt.type_bigint() }}) as web_views_90d,
        cast(coalesce(engagement_history.cart_adds_90d, 0) as {{ dbt.type_bigint() }}) as cart_adds_90d,
        case
            when order_history.split = 'score' then cast(null as {{ dbt.type_boolean() }})
            else future_orders.customer_id is null
        end as churned,
        case
            when order_history.split = 'score' then cast(null as {{ dbt.type_bigint() }})
            else cast(coalesce(future_orders.purchase_days_after, 0) as {{ dbt.type_bigint() }})
        end as purchase_days_after
    from order_history
    left join engagement_history
        on order_history.cutoff_date = engagement_history.cutoff_date
        and order_history.customer_id = engagement_history.customer_id
    left join future_orders
        on order_history.cutoff_date = future_orders.cutoff_date
        and order_history.customer_id = future_orders.customer_id
)

select * from final
