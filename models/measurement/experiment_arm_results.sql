-- One row per experiment, breakdown (dimension value), arm and metric: the units, the
-- rate or mean and its 95 % interval (Wilson score for proportions; Student's t with
-- the sample variance for means). Proportions: converted, visited, emailed (any email
-- sent in the window: in a holdout arm, contamination); means: orders, revenue (per
-- unit). A metric no unit of the experiment records has no row.
{%- set metrics = [('converted', 'proportion'), ('visited', 'proportion'), ('emailed', 'proportion'), ('orders', 'mean'), ('revenue', 'mean')] %}
{%- set dbl = segwise.type_double() %}

with units as (
    select * from {{ ref('int_experiment_units') }}
),

sums as (
    select
        experiment_id,
        experiment_kind,
        dimension,
        dimension_value,
        arm,
        is_control,
        {%- for metric, _ in metrics %}
        count({{ metric }}) as {{ metric }}_n,
        cast(sum({{ metric }}) as {{ dbl }}) as {{ metric }}_sum,
        cast(sum({{ metric }} * {{ metric }}) as {{ dbl }}) as {{ metric }}_sumsq{{ ',' if not loop.last }}
        {%- endfor %}
    from units
    group by experiment_id, experiment_kind, dimension, dimension_value, arm, is_control
),

long as (
    {%- for metric, kind in metrics %}
    select
        experiment_id,
        experiment_kind,
        dimension,
        dimension_value,
        arm,
        is_control,
        cast('{{ metric }}' as {{ dbt.type_string() }}) as metric,
        cast('{{ kind }}' as {{ dbt.type_string() }}) as metric_kind,
        {{ metric }}_n as units,
        {{ metric }}_sum as total,
        {{ metric }}_sumsq as total_squares
    from sums
    where {{ metric }}_n > 0
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

moments as (
    select
        *,
        total / units as metric_value,
        case
            when units > 1 then greatest((total_squares - total * total / units) / (units - 1), 0)
        end as variance
    from long
),

final as (
    select
        {{ dbt.concat(['experiment_id', "':'", 'dimension', "':'", 'dimension_value', "':'", 'arm', "':'", 'metric']) }} as experiment_arm_metric_id,
        experiment_id,
        experiment_kind,
        dimension,
        dimension_value,
        arm,
        is_control,
        metric,
        metric_kind,
        units,
        total,
        metric_value,
        variance,
        case
            when metric_kind = 'proportion' then {{ segwise.wilson_bound('total', 'units', -1) }}
            when units > 1 then metric_value - {{ segwise.t_975('units - 1') }} * sqrt(variance / units)
        end as ci_lower,
        case
            when metric_kind = 'proportion' then {{ segwise.wilson_bound('total', 'units', 1) }}
            when units > 1 then metric_value + {{ segwise.t_975('units - 1') }} * sqrt(variance / units)
        end as ci_upper
    from moments
)

select * from final
