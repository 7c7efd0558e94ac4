-- One row per web session: events of one visitor (anonymous_id) with no gap longer than
-- var('session_timeout_minutes') between them.
with events as (
    select * from {{ ref('int_web_events_identified') }}
),

with_previous as (
    select
        *,
        lag(occurred_at) over (
            partition by coalesce(anonymous_id, customer_id)
            order by occurred_at, event_id
        ) as _previous_at
    from events
),

gaps as (
    select
        *,
        case
            when _previous_at is null then 1
            when {{ dbt.datediff('_previous_at', 'occurred_at', 'second') }} > {{ var('session_timeout_minutes') * 60 }} then 1
            else 0
        end as _is_new_session
    from with_previous
),

numbered as (
    select
        *,
        sum(_is_new_session) over (
            partition by coalesce(anonymous_id, customer_id)
            order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from gaps
),

final as (
    select
        {{ dbt.concat(['coalesce(anonymous_id, customer_id)', "'#'", 'cast(session_number as ' ~ dbt.type_string() ~ ')']) }} as session_id,
        coalesce(anonymous_id, customer_id) as visitor_id,
        max(customer_id) as customer_id,
        min(occurred_at) as session_started_at,
        max(occurred_at) as session_ended_at,
        count(*) as events_count,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views_count,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_adds_count,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchases_count
    from numbered
    group by coalesce(anonymous_id, customer_id), session_number
)

select * from final
