-- One row per anonymous_id ever seen logged in: the customer it belongs to (the latest
-- customer that logged in on it, as of the as-of time).
with events as (
    select * from {{ ref('stg_web__events') }}
),

final as (
    {{ segwise.latest_logins('events') }}
)

select * from final
