{#- The customer event stream's pieces, shared by int_customer_events (every event) and
    int_customer_events_recent (the trigger segments' last hours). -#}

{#- The latest customer that logged in on each anonymous id of ``events`` (a relation or
    CTE name with anonymous_id, customer_id, occurred_at, event_id) before the as-of
    time: the identity map. -#}
{% macro latest_logins(events) -%}
    select
        anonymous_id,
        customer_id
    from (
        select
            anonymous_id,
            customer_id,
            row_number() over (
                partition by anonymous_id
                order by occurred_at desc, event_id desc
            ) as _rank
        from {{ events }}
        where anonymous_id is not null
            and customer_id is not null
            and occurred_at < {{ segwise.as_of_ts() }}
    ) as logged_in
    where _rank = 1
{%- endmacro %}

{#- One shape for every source: web events with a customer (``web_events``: identified),
    valid orders (``orders``) and email events before the as-of time (``email_events``). -#}
{% macro customer_events_union(web_events, orders, email_events) -%}
    select
        {{ dbt.concat(["'web:'", 'event_id']) }} as customer_event_id,
        customer_id,
        event_type,
        occurred_at,
        category,
        product_id,
        device,
        cast(null as {{ dbt.type_string() }}) as campaign_id
    from {{ web_events }}
    where customer_id is not null

    union all

    select
        {{ dbt.concat(["'order:'", 'order_id']) }} as customer_event_id,
        customer_id,
        'order' as event_type,
        ordered_at as occurred_at,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as device,
        cast(null as {{ dbt.type_string() }}) as campaign_id
    from {{ orders }}

    union all

    select
        {{ dbt.concat(["'email:'", 'email_event_id']) }} as customer_event_id,
        customer_id,
        {{ dbt.concat(["'email_'", 'event_type']) }} as event_type,
        occurred_at,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as device,
        campaign_id
    from {{ email_events }}
    where occurred_at < {{ segwise.as_of_ts() }}
{%- endmacro %}
