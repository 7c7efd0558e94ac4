-- One row per customer: every trait a segment rule may compare (profile, consent,
-- lifecycle, RFM, engagement). Its columns and types are a contract: the rule compiler
-- checks trait names and value types against _marts__models.yml.
with customers as (
    select * from {{ ref('dim_customers') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

engagement as (
    select * from {{ ref('customer_engagement') }}
),

final as (
    select
        customers.customer_id,
        customers.country,
        customers.loyalty_tier,
        customers.has_email_consent,
        customers.has_sms_consent,
        customers.lifecycle_stage,
        customers.signup_at,
        coalesce(customers.signup_at, customers.first_order_at) as known_since_at,
        customers.first_order_at,
        customers.last_order_at,
        cast(customers.orders_count as {{ dbt.type_bigint() }}) as orders_count,
        rfm.recency_days,
        cast(rfm.monetary_total as numeric(18, 6)) as monetary_total,
        rfm.frequency_repeat,
        rfm.tenure_days,
        cast(rfm.monetary_avg_repeat as numeric(18, 6)) as monetary_avg_repeat,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_segment,
        cast(engagement.email_sends_30d as {{ dbt.type_bigint() }}) as email_sends_30d,
        cast(engagement.email_opens_30d as {{ dbt.type_bigint() }}) as email_opens_30d,
        cast(engagement.email_clicks_30d as {{ dbt.type_bigint() }}) as email_clicks_30d,
        cast(engagement.email_sends_90d as {{ dbt.type_bigint() }}) as email_sends_90d,
        cast(engagement.email_opens_90d as {{ dbt.type_bigint() }}) as email_opens_90d,
        cast(engagement.email_clicks_90d as {{ dbt.type_bigint() }}) as email_clicks_90d,
        cast(engagement.email_open_rate_90d as numeric(18, 6)) as email_open_rate_90d,
        cast(engagement.email_click_rate_90d as numeric(18, 6)) as email_click_rate_90d,
        engagement.last_email_open_at,
        engagement.last_email_click_at,
        cast(engagement.web_sessions_30d as {{ dbt.type_bigint() }}) as web_sessions_30d,
        cast(engagement.web_sessions_90d as {{ dbt.type_bigint() }}) as web_sessions_90d,
        cast(engagement.product_views_30d as {{ dbt.type_bigint() }}) as product_views_30d,
        cast(engagement.cart_adds_without_purchase_30d as {{ dbt.type_bigint() }}) as cart_adds_without_purchase_30d,
        engagement.engagement_tier
    from customers
    left join rfm
        on customers.customer_id = rfm.customer_id
    left join engagement
        on customers.customer_id = engagement.customer_id
)

select * from final
