-- One row per scored customer, as the scoring step wrote it (see the source's contract).
with source as (
    select * from {{ source('segwise_predictions', 'customer_churn_scores') }}
),

final as (
    select * from source
)

select * from final
