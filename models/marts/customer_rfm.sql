-- One row per customer with at least one valid order before the as-of time: RFM measures,
-- the BTYD inputs on distinct purchase days, 1–5 scores and the named RFM segment.
with orders as (
    select * from {{ ref('fct_orders') }}
),

segment_map as (
    select * from {{ ref('rfm_segment_map') }}
),

purchase_days as (
    select
        customer_id,
        order_date,
        sum(order_amount) as day_amount,
        count(*) as day_orders
    from orders
    group by customer_id, order_date
),

days_ranked as (
    select
        *,
        row_number() over (partition by customer_id order by order_date) as day_number
    from purchase_days
),

per_customer as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        sum(day_orders) as orders_count,
        sum(day_amount) as monetary_total,
        count(*) as purchase_days_count,
        sum(case when day_number > 1 then day_amount else 0 end) as repeat_amount
    from days_ranked
    group by customer_id
),

measures as (
    select
        customer_id,
        first_order_date,
        last_order_date,
        {{ dbt.datediff('last_order_date', segwise.as_of_date(), 'day') }} as recency_days,
        orders_count,
        monetary_total,
        purchase_days_count - 1 as frequency_repeat,
        {{ dbt.datediff('first_order_date', 'last_order_date', 'day') }} as recency_btyd_days,
        {{ dbt.datediff('first_order_date', segwise.as_of_date(), 'day') }} as tenure_days,
        case
            when purchase_days_count > 1 then repeat_amount / (purchase_days_count - 1)
            else 0
        end as monetary_avg_repeat
    from per_customer
),

scored as (
    select
        *,
        {{ segwise.quintile_score('recency_days', descending=true) }} as r_score,
        {{ segwise.quintile_score('orders_count') }} as f_score,
        {{ segwise.quintile_score('monetary_total') }} as m_score
    from measures
),

final as (
    select
        scored.customer_id,
        scored.first_order_date,
        scored.last_order_date,
        scored.recency_days,
        cast(scored.orders_count as {{ dbt.type_bigint() }}) as orders_count,
        cast(scored.monetary_total as {{ dbt.type_numeric() }}) as monetary_total,
        cast(scored.frequency_repeat as {{ dbt.type_bigint() }}) as frequency_repeat,
        scored.recency_btyd_days,
        scored.tenure_days,
        cast(scored.monetary_avg_repeat as {{ dbt.type_numeric() }}) as monetary_avg_repeat,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        {{ dbt.concat(['cast(scored.r_score as ' ~ dbt.type_string() ~ ')', 'cast(scored.f_score as ' ~ dbt.type_string() ~ ')', 'cast(scored.m_score as ' ~ dbt.type_string() ~ ')']) }} as rfm_code,
        segment_map.rfm_segment
    from scored
    inner join segment_map
        on scored.r_score = segment_map.r_score
        and scored.f_score = segment_map.f_score
)

select * from final
