-- One row per valid web event up to the as-of time, with the customer resolved through
-- the identity map when the visitor was not logged in at the time of the event.
with events as (
    select * from {{ ref('stg_web__events') }}
),

identity_map as (
    select * from {{ ref('int_identity_map') }}
),

final as (
    select
        events.event_id,
        events.anonymous_id,
        coalesce(events.customer_id, identity_map.customer_id) as customer_id,
        events.customer_id is null and identity_map.customer_id is not null as is_stitched,
        events.event_type,
        events.occurred_at,
        events.device,
        events.product_id,
        events.category,
        events.page_duration_s,
        events.scroll_depth_pct,
        events.order_id
    from events
    left join identity_map
        on events.anonymous_id = identity_map.anonymous_id
    where events.occurred_at < {{ segwise.as_of_ts() }}
)

select * from final
