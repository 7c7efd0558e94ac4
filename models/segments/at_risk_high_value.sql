-- One row per high-value customer (m_score >= var('at_risk_min_m_score')) who has not
-- bought recently (r_score <= var('at_risk_max_r_score')).
with rfm as (
    select * from {{ ref('customer_rfm') }}
),

final as (
    select
        customer_id,
        'at_risk_high_value' as segment_name,
        {{ dbt.concat(["'m_score='", 'cast(m_score as ' ~ dbt.type_string() ~ ')', "' >= " ~ var('at_risk_min_m_score') ~ "; r_score='", 'cast(r_score as ' ~ dbt.type_string() ~ ')', "' <= " ~ var('at_risk_max_r_score') ~ "; recency_days='", 'cast(recency_days as ' ~ dbt.type_string() ~ ')']) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from rfm
    where m_score >= {{ var('at_risk_min_m_score') }}
        and r_score <= {{ var('at_risk_max_r_score') }}
)

select * from final
