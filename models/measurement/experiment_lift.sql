-- One row per experiment, breakdown (dimension value), metric and treatment arm: the lift
-- of the arm over the experiment's control with its 95 % interval, a p-value and the
-- minimum detectable effect at these sample sizes (alpha 0.05 two-sided, power 0.8).
-- Proportions: absolute lift with Newcombe's hybrid score interval (from the arms'
-- Wilson intervals), pooled two-proportion z-test, relative lift with the Katz log
-- interval. Means: Welch's unequal-variance t (interval and test, Welch-Satterthwaite
-- degrees of freedom), relative lift with a delta-method log interval.
{%- set z = segwise.z_95() %}
{%- set z_power = 0.8416212335729143 %}

with arms as (
    select * from {{ ref('experiment_arm_results') }}
),

pairs as (
    select
        treatment.experiment_id,
        treatment.experiment_kind,
        treatment.dimension,
        treatment.dimension_value,
        treatment.metric,
        treatment.metric_kind,
        treatment.arm,
        control.arm as control_arm,
        treatment.units as n1,
        control.units as n2,
        treatment.total as k1,
        control.total as k2,
        treatment.metric_value as m1,
        control.metric_value as m2,
        treatment.variance as v1,
        control.variance as v2,
        treatment.ci_lower as l1,
        treatment.ci_upper as u1,
        control.ci_lower as l2,
        control.ci_upper as u2
    from arms as treatment
    inner join arms as control
        on treatment.experiment_id = control.experiment_id
        and treatment.dimension = control.dimension
        and treatment.dimension_value = control.dimension_value
        and treatment.metric = control.metric
        and control.is_control
    where not treatment.is_control
),

proportions as (
    select
        *,
        m1 - m2 as absolute_lift,
        m1 - m2 - sqrt((m1 - l1) * (m1 - l1) + (u2 - m2) * (u2 - m2)) as absolute_lift_lower,
        m1 - m2 + sqrt((u1 - m1) * (u1 - m1) + (m2 - l2) * (m2 - l2)) as absolute_lift_upper,
        case
            when k1 > 0 and k2 > 0
                then exp(ln(m1 / m2) - {{ z }} * sqrt(1.0 / k1 - 1.0 / n1 + 1.0 / k2 - 1.0 / n2)) - 1
        end as relative_lift_lower,
        case
            when k1 > 0 and k2 > 0
                then exp(ln(m1 / m2) + {{ z }} * sqrt(1.0 / k1 - 1.0 / n1 + 1.0 / k2 - 1.0 / n2)) - 1
        end as relative_lift_upper,
        sqrt(((k1 + k2) / (n1 + n2)) * (1.0 - (k1 + k2) / (n1 + n2)) * (1.0 / n1 + 1.0 / n2)) as pooled_se,
        ({{ z }} + {{ z_power }}) * sqrt(((k1 + k2) / (n1 + n2)) * (1.0 - (k1 + k2) / (n1 + n2)) * (1.0 / n1 + 1.0 / n2)) as minimum_detectable_effect,
        cast('newcombe_hybrid_score' as {{ dbt.type_string() }}) as interval_method,
        cast('two_proportion_z_pooled' as {{ dbt.type_string() }}) as test_method
    from pairs
    where metric_kind = 'proportion'
),

proportion_tests as (
    select
        *,
        case
            when pooled_se > 0 then {{ segwise.two_sided_p_normal('absolute_lift / pooled_se') }}
            when pooled_se = 0 then 1.0
        end as p_value
    from proportions
),

means as (
    select
        *,
        m1 - m2 as absolute_lift,
        sqrt(v1 / n1 + v2 / n2) as welch_se,
        {{ segwise.welch_df('v1', 'n1', 'v2', 'n2') }} as welch_df,
        case
            when m1 > 0 and m2 > 0
                then exp(ln(m1 / m2) - {{ z }} * sqrt(v1 / (n1 * m1 * m1) + v2 / (n2 * m2 * m2))) - 1
        end as relative_lift_lower,
        case
            when m1 > 0 and m2 > 0
                then exp(ln(m1 / m2) + {{ z }} * sqrt(v1 / (n1 * m1 * m1) + v2 / (n2 * m2 * m2))) - 1
        end as relative_lift_upper,
        ({{ z }} + {{ z_power }}) * sqrt(v1 / n1 + v2 / n2) as minimum_detectable_effect,
        cast('welch_t' as {{ dbt.type_string() }}) as interval_method,
        cast('welch_t' as {{ dbt.type_string() }}) as test_method
    from pairs
    where metric_kind = 'mean' and n1 > 1 and n2 > 1
),

mean_tests as (
    select
        *,
        case when welch_se > 0 then absolute_lift - {{ segwise.t_975('welch_df') }} * welch_se end as absolute_lift_lower,
        case when welch_se > 0 then absolute_lift + {{ segwise.t_975('welch_df') }} * welch_se end as absolute_lift_upper,
        case
            when welch_se > 0 then {{ segwise.two_sided_p_t('absolute_lift / welch_se', 'welch_df') }}
            when welch_se = 0 then 1.0
        end as p_value
    from means
),

{%- set shared = ['experiment_id', 'experiment_kind', 'dimension', 'dimension_value', 'metric', 'metric_kind', 'arm', 'control_arm', 'n1', 'n2', 'm1', 'm2', 'absolute_lift', 'absolute_lift_lower', 'absolute_lift_upper', 'relative_lift_lower', 'relative_lift_upper', 'p_value', 'minimum_detectable_effect', 'interval_method', 'test_method'] %}

tested as (
    select {{ shared | join(', ') }} from proportion_tests
    union all
    select {{ shared | join(', ') }} from mean_tests
),

final as (
    select
        {{ dbt.concat(['experiment_id', "':'", 'dimension', "':'", 'dimension_value', "':'", 'metric', "':'", 'arm']) }} as experiment_lift_id,
        experiment_id,
        experiment_kind,
        dimension,
        dimension_value,
        metric,
        metric_kind,
        arm,
        control_arm,
        n1 as treatment_units,
        n2 as control_units,
        m1 as treatment_value,
        m2 as control_value,
        absolute_lift,
        absolute_lift_lower,
        absolute_lift_upper,
        case when m2 > 0 then m1 / m2 - 1 end as relative_lift,
        relative_lift_lower,
        relative_lift_upper,
        p_value,
        minimum_detectable_effect,
        interval_method,
        test_method,
        case
            when absolute_lift_lower > 0 then 'positive'
            when absolute_lift_upper < 0 then 'negative'
            else 'inconclusive'
        end as lift_verdict
    from tested
)

select * from final
