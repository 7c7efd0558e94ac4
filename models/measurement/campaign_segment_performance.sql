-- One row per campaign and segment its recipients were in when it was sent (membership
-- at send time, from the SCD2 history — not today's), plus a '(all recipients)' row per
-- campaign: recipients, delivered, opens, clicks, unsubscribes, bounces, complaints, their
-- rates, and the valid orders and revenue within var('measurement_window_days') after the
-- send (and after the first click). Recipients in the segment's holdout at send time are
-- counted apart: a holdout member reached by another list.
{%- set window = var('measurement_window_days') %}
{%- set flags = ['delivered', 'opened', 'clicked', 'unsubscribed', 'bounced', 'complained'] %}
{%- set types = {'delivered': 'delivered', 'opened': 'open', 'clicked': 'click', 'unsubscribed': 'unsubscribe', 'bounced': 'bounce', 'complained': 'complaint'} %}

with events as (
    select * from {{ ref('stg_email__events') }}
    where campaign_id is not null
        and occurred_at < {{ segwise.as_of_ts() }}
),

campaigns as (
    select * from {{ ref('stg_email__campaigns') }}
),

history as (
    select * from {{ ref('segment_membership_history') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

sends as (
    select
        campaign_id,
        customer_id,
        min(occurred_at) as sent_at
    from events
    where event_type = 'sent'
    group by campaign_id, customer_id
),

reactions as (
    select
        campaign_id,
        customer_id,
        {%- for flag in flags %}
        max(case when event_type = '{{ types[flag] }}' then 1 else 0 end) as {{ flag }},
        {%- endfor %}
        min(case when event_type = 'click' then occurred_at end) as first_click_at
    from events
    group by campaign_id, customer_id
),

recipients as (
    select
        sends.campaign_id,
        sends.customer_id,
        sends.sent_at,
        {%- for flag in flags %}
        coalesce(reactions.{{ flag }}, 0) as {{ flag }},
        {%- endfor %}
        reactions.first_click_at
    from sends
    left join reactions
        on sends.campaign_id = reactions.campaign_id
        and sends.customer_id = reactions.customer_id
),

-- one pass over the orders: each recipient's orders in the window after the send or
-- after the first click (a click comes after the send), flagged by which window holds them
attributed as (
    select
        recipients.campaign_id,
        recipients.customer_id,
        orders.order_id,
        orders.order_amount,
        coalesce(orders.ordered_at < {{ dbt.dateadd('day', window, 'recipients.sent_at') }}, false) as after_send,
        coalesce(orders.ordered_at >= recipients.first_click_at
            and orders.ordered_at < {{ dbt.dateadd('day', window, 'recipients.first_click_at') }}, false) as after_click
    from recipients
    left join orders
        on recipients.customer_id = orders.customer_id
        and orders.ordered_at >= recipients.sent_at
        and orders.ordered_at < {{ dbt.dateadd('day', window, 'coalesce(recipients.first_click_at, recipients.sent_at)') }}
),

attributed_totals as (
    select
        campaign_id,
        customer_id,
        sum(case when after_send then 1 else 0 end) as orders_after_send,
        coalesce(sum(case when after_send then order_amount end), 0) as revenue_after_send,
        sum(case when after_click then 1 else 0 end) as orders_after_click,
        coalesce(sum(case when after_click then order_amount end), 0) as revenue_after_click
    from attributed
    group by campaign_id, customer_id
),

outcomes as (
    select
        recipients.*,
        attributed_totals.orders_after_send,
        attributed_totals.revenue_after_send,
        attributed_totals.orders_after_click,
        attributed_totals.revenue_after_click
    from recipients
    inner join attributed_totals
        on recipients.campaign_id = attributed_totals.campaign_id
        and recipients.customer_id = attributed_totals.customer_id
),

by_segment as (
    select
        outcomes.*,
        history.segment_name,
        history.is_holdout
    from outcomes
    inner join history
        on outcomes.customer_id = history.customer_id
        and history.valid_from <= outcomes.sent_at
        and (history.valid_to is null or outcomes.sent_at < history.valid_to)
    union all
    select
        outcomes.*,
        cast('(all recipients)' as {{ dbt.type_string() }}) as segment_name,
        false as is_holdout
    from outcomes
),

counts as (
    select
        campaign_id,
        segment_name,
        count(*) as recipients,
        sum(case when is_holdout then 1 else 0 end) as holdout_recipients,
        {%- for flag in flags %}
        sum({{ flag }}) as {{ flag }},
        {%- endfor %}
        sum(case when orders_after_send > 0 then 1 else 0 end) as converted_recipients,
        sum(orders_after_send) as orders_after_send,
        sum(revenue_after_send) as revenue_after_send,
        sum(case when orders_after_click > 0 then 1 else 0 end) as click_converted_recipients,
        sum(revenue_after_click) as revenue_after_click,
        max(sent_at) as last_sent_at
    from by_segment
    group by campaign_id, segment_name
),

final as (
    select
        {{ dbt.concat(['counts.campaign_id', "':'", 'counts.segment_name']) }} as campaign_segment_id,
        counts.campaign_id,
        campaigns.campaign_name,
        coalesce(campaigns.sent_at, counts.last_sent_at) as sent_at,
        counts.segment_name,
        counts.recipients,
        counts.holdout_recipients,
        counts.delivered,
        counts.opened as opens,
        counts.clicked as clicks,
        counts.unsubscribed as unsubscribes,
        counts.bounced as bounces,
        counts.complained as complaints,
        {%- set dbl = segwise.type_double() %}
        cast(counts.delivered as {{ dbl }}) / counts.recipients as delivery_rate,
        case when counts.delivered > 0 then cast(counts.opened as {{ dbl }}) / counts.delivered end as open_rate,
        case when counts.delivered > 0 then cast(counts.clicked as {{ dbl }}) / counts.delivered end as click_rate,
        case when counts.opened > 0 then cast(counts.clicked as {{ dbl }}) / counts.opened end as click_to_open_rate,
        case when counts.delivered > 0 then cast(counts.unsubscribed as {{ dbl }}) / counts.delivered end as unsubscribe_rate,
        cast(counts.bounced as {{ dbl }}) / counts.recipients as bounce_rate,
        case when counts.delivered > 0 then cast(counts.complained as {{ dbl }}) / counts.delivered end as complaint_rate,
        counts.converted_recipients,
        cast(counts.converted_recipients as {{ dbl }}) / counts.recipients as conversion_rate,
        counts.orders_after_send,
        counts.revenue_after_send,
        cast(counts.revenue_after_send as {{ dbl }}) / counts.recipients as revenue_per_recipient,
        counts.click_converted_recipients,
        counts.revenue_after_click,
        {{ dbt.dateadd('day', window, 'counts.last_sent_at') }} <= {{ segwise.as_of_ts() }} as is_window_complete
    from counts
    left join campaigns on counts.campaign_id = campaigns.campaign_id
)

select * from final
