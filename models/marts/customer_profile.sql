-- One row per customer: every trait a segment rule may compare (profile, consent,
-- lifecycle, RFM, engagement, and the scoring step's predictions). Its columns and types are an enforced contract: the rule
-- compiler checks trait names and value types against _marts__models.yml, and dbt checks
-- the built model against the same declarations.
with customers as (
    select * from {{ ref('dim_customers') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

engagement as (
    select * from {{ ref('customer_engagement') }}
),

favourite as (
    select * from {{ ref('int_customer_favourite_category') }}
),

-- the scoring step's outputs (empty before the first scoring run: the traits are null)
churn as (
    select * from {{ ref('stg_segwise_predictions__customer_churn_scores') }}
),

clv as (
    select * from {{ ref('stg_segwise_predictions__customer_clv') }}
),

clusters as (
    select * from {{ ref('stg_segwise_predictions__customer_clusters') }}
),

final as (
    -- every column cast to its declared type: the contract is checked by the database
    select
        cast(customers.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(customers.country as {{ dbt.type_string() }}) as country,
        cast(customers.loyalty_tier as {{ dbt.type_string() }}) as loyalty_tier,
        cast(customers.has_email_consent as {{ dbt.type_boolean() }}) as has_email_consent,
        cast(customers.has_sms_consent as {{ dbt.type_boolean() }}) as has_sms_consent,
        cast(customers.lifecycle_stage as {{ dbt.type_string() }}) as lifecycle_stage,
        cast(customers.signup_at as {{ dbt.type_timestamp() }}) as signup_at,
        cast(coalesce(customers.signup_at, customers.first_order_at) as {{ dbt.type_timestamp() }}) as known_since_at,
        cast(customers.first_order_at as {{ dbt.type_timestamp() }}) as first_order_at,
        cast(customers.last_order_at as {{ dbt.type_timestamp() }}) as last_order_at,
        cast(customers.orders_count as {{ dbt.type_bigint() }}) as orders_count,
        cast(rfm.recency_days as {{ dbt.type_bigint() }}) as recency_days,
        cast(rfm.monetary_total as numeric(18, 6)) as monetary_total,
        cast(rfm.frequency_repeat as {{ dbt.type_bigint() }}) as frequency_repeat,
        cast(rfm.tenure_days as {{ dbt.type_bigint() }}) as tenure_days,
        cast(rfm.monetary_avg_repeat as numeric(18, 6)) as monetary_avg_repeat,
        cast(rfm.r_score as {{ dbt.type_int() }}) as r_score,
        cast(rfm.f_score as {{ dbt.type_int() }}) as f_score,
        cast(rfm.m_score as {{ dbt.type_int() }}) as m_score,
        cast(rfm.rfm_segment as {{ dbt.type_string() }}) as rfm_segment,
        cast(engagement.email_sends_30d as {{ dbt.type_bigint() }}) as email_sends_30d,
        cast(engagement.email_opens_30d as {{ dbt.type_bigint() }}) as email_opens_30d,
        cast(engagement.email_clicks_30d as {{ dbt.type_bigint() }}) as email_clicks_30d,
        cast(engagement.email_sends_90d as {{ dbt.type_bigint() }}) as email_sends_90d,
        cast(engagement.email_opens_90d as {{ dbt.type_bigint() }}) as email_opens_90d,
        cast(engagement.email_clicks_90d as {{ dbt.type_bigint() }}) as email_clicks_90d,
        cast(engagement.email_open_rate_90d as numeric(18, 6)) as email_open_rate_90d,
        cast(engagement.email_click_rate_90d as numeric(18, 6)) as email_click_rate_90d,
        cast(engagement.last_email_open_at as {{ dbt.type_timestamp() }}) as last_email_open_at,
        cast(engagement.last_email_click_at as {{ dbt.type_timestamp() }}) as last_email_click_at,
        cast(engagement.web_sessions_30d as {{ dbt.type_bigint() }}) as web_sessions_30d,
        cast(engagement.web_sessions_90d as {{ dbt.type_bigint() }}) as web_sessions_90d,
        cast(engagement.product_views_30d as {{ dbt.type_bigint() }}) as product_views_30d,
        cast(engagement.cart_adds_without_purchase_30d as {{ dbt.type_bigint() }}) as cart_adds_without_purchase_30d,
        cast(engagement.engagement_tier as {{ dbt.type_string() }}) as engagement_tier,
        cast(favourite.favourite_category as {{ dbt.type_string() }}) as favourite_category,
        cast(churn.churn_probability as {{ segwise.type_double() }}) as churn_probability,
        cast(churn.churn_risk_band as {{ dbt.type_string() }}) as churn_risk_band,
        cast(clv.expected_orders_90d as {{ segwise.type_double() }}) as expected_orders_90d,
        cast(clv.p_alive as {{ segwise.type_double() }}) as p_alive,
        cast(clv.predicted_clv_365d as {{ segwise.type_double() }}) as predicted_clv_365d,
        cast(clv.predicted_clv_365d_lower as {{ segwise.type_double() }}) as predicted_clv_365d_lower,
        cast(clv.predicted_clv_365d_upper as {{ segwise.type_double() }}) as predicted_clv_365d_upper,
        cast(clusters.cluster_id as {{ dbt.type_int() }}) as cluster_id,
        cast(clusters.cluster_label as {{ dbt.type_string() }}) as cluster_label
    from customers
    left join rfm
        on customers.customer_id = rfm.customer_id
    left join engagement
        on customers.customer_id = engagement.customer_id
    left join favourite
        on customers.customer_id = favourite.customer_id
    left join churn
        on customers.customer_id = churn.customer_id
    left join clv
        on customers.customer_id = clv.customer_id
    left join clusters
        on customers.customer_id = clusters.customer_id
)

select * from final
