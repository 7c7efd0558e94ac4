{{ config(materialized=segwise.incremental_materialization(), unique_key='scorecard_id', on_schema_change='append_new_columns') }}
-- One row per segment per run (incremental, like segment_size_history): its size and
-- trend, its latest campaign's metrics (membership at send time), the conversion lift
-- over its holdout and over the universal control group with their 95 % intervals, the
-- holdout's contamination, and is_campaign_not_working when the holdout lift's interval
-- lies entirely at or below zero.
with sizes as (
    select * from {{ ref('segment_size_history') }}
    where computed_at = {{ segwise.run_started_ts() }}
),

performance as (
    select * from {{ ref('campaign_segment_performance') }}
),

lift as (
    select * from {{ ref('experiment_lift') }}
    where dimension = 'all' and metric = 'converted'
),

arms as (
    select * from {{ ref('experiment_arm_results') }}
    where dimension = 'all' and metric = 'emailed' and arm = 'holdout'
),

latest_campaign as (
    select
        *,
        row_number() over (partition by segment_name order by sent_at desc, campaign_id) as _rank
    from performance
),

final as (
    select
        {{ dbt.concat(['sizes.segment_name', "'@'", 'cast(sizes.computed_at as ' ~ dbt.type_string() ~ ')']) }} as scorecard_id,
        sizes.segment_name,
        sizes.computed_at,
        sizes.members,
        sizes.size_delta,
        sizes.size_delta_pct,
        sizes.is_alert as is_size_alert,
        campaign.campaign_id as last_campaign_id,
        campaign.sent_at as last_campaign_sent_at,
        campaign.recipients as last_campaign_recipients,
        campaign.open_rate as last_campaign_open_rate,
        campaign.click_rate as last_campaign_click_rate,
        campaign.conversion_rate as last_campaign_conversion_rate,
        campaign.revenue_per_recipient as last_campaign_revenue_per_recipient,
        holdout.treatment_units as holdout_treatment_units,
        holdout.control_units as holdout_units,
        holdout.absolute_lift as holdout_lift,
        holdout.absolute_lift_lower as holdout_lift_lower,
        holdout.absolute_lift_upper as holdout_lift_upper,
        holdout.p_value as holdout_lift_p_value,
        contamination.metric_value as holdout_contamination,
        universal.control_units as universal_control_units,
        universal.absolute_lift as universal_control_lift,
        universal.absolute_lift_lower as universal_control_lift_lower,
        universal.absolute_lift_upper as universal_control_lift_upper,
        coalesce(holdout.absolute_lift_upper <= 0, false) as is_campaign_not_working
    from sizes
    left join latest_campaign as campaign
        on sizes.segment_name = campaign.segment_name and campaign._rank = 1
    left join lift as holdout
        on sizes.segment_name = holdout.experiment_id
        and holdout.experiment_kind = 'segment_holdout'
    left join arms as contamination
        on sizes.segment_name = contamination.experiment_id
        and contamination.experiment_kind = 'segment_holdout'
    left join lift as universal
        on {{ dbt.concat(['sizes.segment_name', "'@universal_control'"]) }} = universal.experiment_id
)

select * from final
