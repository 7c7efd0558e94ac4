-- One row per imported experiment (the importer writes one row per id; the latest wins).
with source as (
    select * from {{ source('experiments', 'experiment_catalog') }}
),

cleaned as (
    select
        {{ segwise.clean_code('experiment_id') }} as experiment_id,
        {{ segwise.clean_text('experiment_name') }} as experiment_name,
        {{ segwise.clean_text('control_arm') }} as control_arm,
        outcome_window_days,
        {{ segwise.clean_text('description') }} as description,
        imported_at,
        row_number() over (
            partition by {{ segwise.clean_code('experiment_id') }}
            order by imported_at desc
        ) as _rank
    from source
),

final as (
    select
        experiment_id,
        experiment_name,
        control_arm,
        outcome_window_days,
        description,
        imported_at
    from cleaned
    where experiment_id is not null and control_arm is not null and _rank = 1
)

select * from final
