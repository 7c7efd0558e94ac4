-- The single-query limit: one hand-written DuckDB statement computing, straight from the
-- raw tables, what segwise's marts and three of its segments compute on clean data —
-- per customer RFM (recency, orders, spend), email sends / opens / clicks in 30 and 90
-- days, web sessions (30-minute timeout, anonymous visitors stitched to the customer who
-- last logged in on them) and product views in 30 days, and the members of
-- recent_purchasers_30d, repeat_buyers_30d and cart_abandoners_24h. No tests, no
-- quarantine, no history: the floor a build cannot go below. `$as_of_ts` is the end of
-- the as-of day. Run by scripts/peer_duckdb.py.
create or replace table customer_aggregates as
with orders as (
    select customer_id, ordered_at, order_total
    from (
        select *, row_number() over (partition by order_id order by _loaded_at desc) as rn
        from wh.raw.orders
    )
    where rn = 1 and coalesce(lower(trim(status)), 'completed') <> 'cancelled'
        and order_total >= 0 and ordered_at < $as_of_ts
),
email as (
    select customer_id, lower(trim(event_type)) as event_type, occurred_at
    from (
        select *, row_number() over (partition by email_event_id order by _loaded_at desc) as rn
        from wh.raw.email_events
    )
    where rn = 1 and occurred_at < $as_of_ts
),
web as (
    select anonymous_id, customer_id, lower(trim(event_type)) as event_type, occurred_at, event_id
    from (
        select *, row_number() over (partition by event_id order by _loaded_at desc) as rn
        from wh.raw.web_events
    )
    where rn = 1 and occurred_at < $as_of_ts
),
identity as (
    select anonymous_id, arg_max(customer_id, (occurred_at, event_id)) as customer_id
    from web
    where anonymous_id is not null and customer_id is not null
    group by anonymous_id
),
web_stitched as (
    select web.*, coalesce(web.customer_id, identity.customer_id) as who,
        coalesce(web.anonymous_id, web.customer_id) as visitor
    from web left join identity using (anonymous_id)
),
sessions as (
    select visitor, max(who) as customer_id, min(occurred_at) as started_at
    from (
        select *, sum(is_new) over (partition by visitor order by occurred_at, event_id) as session_number
        from (
            select *, case when lag(occurred_at) over (partition by visitor order by occurred_at, event_id)
                               >= occurred_at - interval 30 minute then 0 else 1 end as is_new
            from web_stitched
        )
    )
    group by visitor, session_number
),
rfm as (
    select customer_id, date_diff('day', max(cast(ordered_at as date)), cast($as_of_ts as date) - 1) as recency_days,
        count(*) as orders_count, sum(order_total) as monetary_total,
        count(*) filter (where ordered_at >= $as_of_ts - interval 30 day) as orders_30d
    from orders group by customer_id
),
email_counts as (
    select customer_id,
        count(*) filter (where event_type = 'sent' and occurred_at >= $as_of_ts - interval 30 day) as email_sends_30d,
        count(*) filter (where event_type = 'open' and occurred_at >= $as_of_ts - interval 30 day) as email_opens_30d,
        count(*) filter (where event_type = 'click' and occurred_at >= $as_of_ts - interval 30 day) as email_clicks_30d,
        count(*) filter (where event_type = 'sent' and occurred_at >= $as_of_ts - interval 90 day) as email_sends_90d,
        count(*) filter (where event_type = 'open' and occurred_at >= $as_of_ts - interval 90 day) as email_opens_90d,
        count(*) filter (where event_type = 'click' and occurred_at >= $as_of_ts - interval 90 day) as email_clicks_90d
    from email group by customer_id
),
session_counts as (
    select customer_id, count(*) filter (where started_at >= $as_of_ts - interval 30 day) as web_sessions_30d
    from sessions where customer_id is not null group by customer_id
),
views as (
    select who as customer_id, count(*) as product_views_30d
    from web_stitched
    where who is not null and event_type = 'product_view' and occurred_at >= $as_of_ts - interval 30 day
    group by who
),
abandoners as (
    select distinct adds.who as customer_id
    from web_stitched as adds
    where adds.who is not null and adds.event_type = 'add_to_cart'
        and adds.occurred_at >= $as_of_ts - interval 7 day
        and adds.occurred_at <= $as_of_ts - interval 24 hour
        and not exists (
            select 1 from orders
            where orders.customer_id = adds.who and orders.ordered_at >= adds.occurred_at
                and orders.ordered_at <= adds.occurred_at + interval 24 hour
        )
),
customers as (
    select customer_id from (
        select *, row_number() over (partition by customer_id order by _loaded_at desc) as rn
        from wh.raw.crm_contacts
    ) where rn = 1 and customer_id is not null
)
select
    customers.customer_id,
    rfm.recency_days,
    coalesce(rfm.orders_count, 0) as orders_count,
    coalesce(rfm.monetary_total, 0) as monetary_total,
    coalesce(email_counts.email_sends_30d, 0) as email_sends_30d,
    coalesce(email_counts.email_opens_30d, 0) as email_opens_30d,
    coalesce(email_counts.email_clicks_30d, 0) as email_clicks_30d,
    coalesce(email_counts.email_sends_90d, 0) as email_sends_90d,
    coalesce(email_counts.email_opens_90d, 0) as email_opens_90d,
    coalesce(email_counts.email_clicks_90d, 0) as email_clicks_90d,
    coalesce(session_counts.web_sessions_30d, 0) as web_sessions_30d,
    coalesce(views.product_views_30d, 0) as product_views_30d,
    coalesce(rfm.orders_30d, 0) >= 1 as recent_purchasers_30d,
    coalesce(rfm.orders_30d, 0) >= 2 as repeat_buyers_30d,
    abandoners.customer_id is not null as cart_abandoners_24h
from customers
left join rfm using (customer_id)
left join email_counts using (customer_id)
left join session_counts using (customer_id)
left join views using (customer_id)
left join abandoners using (customer_id);
