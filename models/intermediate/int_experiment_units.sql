-- One row per experiment unit and breakdown it counts in (dimension 'all' for the whole
-- experiment, then one per unit attribute), with its arm and outcomes as numbers. The
-- measurement marts aggregate it per arm. Two kinds:
--   imported: experiments loaded by `segwise experiments import`, randomised by whoever
--     ran them (their attributes are the breakdowns);
--   segment_holdout: every segment with a holdout is an experiment — a unit is a
--     customer's first entry into the segment (from the SCD2 membership history) whose
--     outcome window (var measurement_window_days) has ended by the as-of time; arm
--     treatment or holdout (the deterministic hash); outcomes: valid orders and revenue in
--     the window after entering, and whether any email was sent to the customer in it (in
--     the holdout arm, that share is contamination);
--   universal_control: every segment (experiment '<segment>@universal_control'), its
--     treatment members against its members in the universal control group;
--   variant: a segment declaring A/B/n variants (experiment '<segment>@variants'), each
--     variant against the control variant, among the members its emails reach.
{%- set window = var('measurement_window_days') %}

with units as (
    select * from {{ ref('stg_experiments__units') }}
),

catalog as (
    select * from {{ ref('stg_experiments__catalog') }}
),

attributes as (
    select * from {{ ref('stg_experiments__unit_attributes') }}
),

imported as (
    select
        units.experiment_id,
        cast('imported' as {{ dbt.type_string() }}) as experiment_kind,
        units.unit_id,
        units.arm,
        units.arm = catalog.control_arm as is_control,
        cast(case when units.converted then 1 else 0 end as {{ segwise.type_double() }}) as converted,
        cast(case when units.visited then 1 when not units.visited then 0 end as {{ segwise.type_double() }}) as visited,
        cast(null as {{ segwise.type_double() }}) as orders,
        cast(units.revenue as {{ segwise.type_double() }}) as revenue,
        cast(null as {{ segwise.type_double() }}) as emailed
    from units
    inner join catalog on units.experiment_id = catalog.experiment_id
),

history as (
    select * from {{ ref('segment_membership_history') }}
),

segments as (
    select * from {{ ref('segment_catalog') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

sends as (
    select * from {{ ref('stg_email__events') }}
    where event_type = 'sent'
),

entries as (
    select
        history.segment_name,
        history.customer_id,
        history.is_holdout,
        history.variant,
        segments.holdout_pct,
        segments.control_variant,
        {{ segwise.is_universal_control('history.customer_id') }} as is_universal_control,
        history.valid_from as entered_at,
        {{ dbt.dateadd('day', window, 'history.valid_from') }} as window_end,
        row_number() over (
            partition by history.segment_name, history.customer_id
            order by history.valid_from
        ) as entry_number
    from history
    inner join segments on history.segment_name = segments.segment_name
    where {{ dbt.dateadd('day', window, 'history.valid_from') }} <= {{ segwise.as_of_ts() }}
        {%- if var('universal_control_pct') | float <= 0 %}
        and (segments.holdout_pct > 0 or segments.variants is not null)
        {%- endif %}
),

first_entries as (
    select * from entries
    where entry_number = 1
),

entry_orders as (
    select
        first_entries.segment_name,
        first_entries.customer_id,
        count(orders.order_id) as orders,
        coalesce(sum(orders.order_amount), 0) as revenue
    from first_entries
    left join orders
        on first_entries.customer_id = orders.customer_id
        and orders.ordered_at >= first_entries.entered_at
        and orders.ordered_at < first_entries.window_end
    group by first_entries.segment_name, first_entries.customer_id
),

entry_sends as (
    select
        first_entries.segment_name,
        first_entries.customer_id,
        count(sends.email_event_id) as sends
    from first_entries
    left join sends
        on first_entries.customer_id = sends.customer_id
        and sends.occurred_at >= first_entries.entered_at
        and sends.occurred_at < first_entries.window_end
    group by first_entries.segment_name, first_entries.customer_id
),

entry_outcomes as (
    select
        first_entries.*,
        entry_orders.orders,
        entry_orders.revenue,
        entry_sends.sends
    from first_entries
    inner join entry_orders
        on first_entries.segment_name = entry_orders.segment_name
        and first_entries.customer_id = entry_orders.customer_id
    inner join entry_sends
        on first_entries.segment_name = entry_sends.segment_name
        and first_entries.customer_id = entry_sends.customer_id
),

-- a segment's holdout against its treatment members (the universal control group, which
-- no list reaches, is neither)
segment_arms as (
    select
        segment_name as experiment_id,
        cast('segment_holdout' as {{ dbt.type_string() }}) as experiment_kind,
        customer_id,
        cast(case when is_holdout then 'holdout' else 'treatment' end as {{ dbt.type_string() }}) as arm,
        is_holdout as is_control,
        orders,
        revenue,
        sends
    from entry_outcomes
    where holdout_pct > 0 and not is_universal_control
    union all
    -- every segment's treatment members against its members in the universal control group
    select
        {{ dbt.concat(['segment_name', "'@universal_control'"]) }} as experiment_id,
        cast('universal_control' as {{ dbt.type_string() }}) as experiment_kind,
        customer_id,
        cast(case when is_universal_control then 'universal_control' else 'treatment' end as {{ dbt.type_string() }}) as arm,
        is_universal_control as is_control,
        orders,
        revenue,
        sends
    from entry_outcomes
    where not is_holdout and {{ var('universal_control_pct') | float }} > 0
    union all
    -- A/B/n: a segment's variants among the members who get its emails, each against the
    -- control variant
    select
        {{ dbt.concat(['segment_name', "'@variants'"]) }} as experiment_id,
        cast('variant' as {{ dbt.type_string() }}) as experiment_kind,
        customer_id,
        variant as arm,
        variant = control_variant as is_control,
        orders,
        revenue,
        sends
    from entry_outcomes
    where variant is not null and not is_holdout and not is_universal_control
),

segment_holdouts as (
    select
        experiment_id,
        experiment_kind,
        customer_id as unit_id,
        arm,
        is_control,
        cast(case when orders > 0 then 1 else 0 end as {{ segwise.type_double() }}) as converted,
        cast(null as {{ segwise.type_double() }}) as visited,
        cast(orders as {{ segwise.type_double() }}) as orders,
        cast(revenue as {{ segwise.type_double() }}) as revenue,
        cast(case when sends > 0 then 1 else 0 end as {{ segwise.type_double() }}) as emailed
    from segment_arms
),

breakdowns as (
    select
        imported.*,
        cast('all' as {{ dbt.type_string() }}) as dimension,
        cast('all' as {{ dbt.type_string() }}) as dimension_value
    from imported
    union all
    select
        imported.*,
        attributes.attribute as dimension,
        coalesce(attributes.attribute_value, '(missing)') as dimension_value
    from imported
    inner join attributes
        on imported.experiment_id = attributes.experiment_id
        and imported.unit_id = attributes.unit_id
    union all
    select
        segment_holdouts.*,
        cast('all' as {{ dbt.type_string() }}) as dimension,
        cast('all' as {{ dbt.type_string() }}) as dimension_value
    from segment_holdouts
),

final as (
    select
        {{ dbt.concat(['experiment_id', "':'", 'dimension', "':'", 'unit_id']) }} as experiment_unit_dimension_id,
        experiment_id,
        experiment_kind,
        dimension,
        dimension_value,
        unit_id,
        arm,
        is_control,
        converted,
        visited,
        orders,
        revenue,
        emailed
    from breakdowns
)

select * from final
