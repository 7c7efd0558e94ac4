-- One row per customer in the 'high' engagement tier with an order in the last
-- var('highly_engaged_purchase_days') days.
with engagement as (
    select * from {{ ref('customer_engagement') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

final as (
    select
        engagement.customer_id,
        'highly_engaged_recent_buyers' as segment_name,
        {{ dbt.concat(["'engagement_tier=high; recency_days='", 'cast(rfm.recency_days as ' ~ dbt.type_string() ~ ')', "' <= " ~ var('highly_engaged_purchase_days') ~ "; email_opens_30d='", 'cast(engagement.email_opens_30d as ' ~ dbt.type_string() ~ ')', "'; web_sessions_30d='", 'cast(engagement.web_sessions_30d as ' ~ dbt.type_string() ~ ')']) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from engagement
    inner join rfm
        on engagement.customer_id = rfm.customer_id
    where engagement.engagement_tier = 'high'
        and rfm.recency_days <= {{ var('highly_engaged_purchase_days') }}
)

select * from final
