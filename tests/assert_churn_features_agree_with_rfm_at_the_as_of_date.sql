-- The churn features at the score cutoff are the RFM mart's own measures: one definition
-- of recency, tenure, frequency and spend, whichever cutoff it is computed at.
with scored as (
    select * from {{ ref('customer_churn_features') }}
    where split = 'score'
),

rfm as (
    select * from {{ ref('customer_rfm') }}
)

select
    coalesce(scored.customer_id, rfm.customer_id) as customer_id
from scored
full outer join rfm
    on scored.customer_id = rfm.customer_id
where scored.customer_id is null
    or rfm.customer_id is null
    or scored.recency_days <> rfm.recency_days
    or scored.tenure_days <> rfm.tenure_days
    or scored.purchase_days <> rfm.frequency_repeat + 1
    or scored.orders_count <> rfm.orders_count
    or abs(scored.monetary_total - rfm.monetary_total) > 0.000001
