-- One row per customer in the top monetary quintile (m_score >= var('vip_min_m_score'))
-- who also buys often (f_score >= var('vip_min_f_score')).
with rfm as (
    select * from {{ ref('customer_rfm') }}
),

final as (
    select
        customer_id,
        'vip_customers' as segment_name,
        {{ dbt.concat(["'m_score='", 'cast(m_score as ' ~ dbt.type_string() ~ ')', "' >= " ~ var('vip_min_m_score') ~ "; f_score='", 'cast(f_score as ' ~ dbt.type_string() ~ ')', "' >= " ~ var('vip_min_f_score') ~ "; monetary_total='", 'cast(monetary_total as ' ~ dbt.type_string() ~ ')']) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from rfm
    where m_score >= {{ var('vip_min_m_score') }}
        and f_score >= {{ var('vip_min_f_score') }}
)

select * from final
