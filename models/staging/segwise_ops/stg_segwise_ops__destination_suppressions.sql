-- One row per address an ESP reported as unsubscribed or cleaned (any destination).
with source as (
    select * from {{ source('segwise_ops', 'destination_suppressions') }}
),

final as (
    select
        lower(trim(email)) as email,
        min(remote_status) as remote_status,
        min(discovered_at) as discovered_at
    from source
    where email is not null
    group by lower(trim(email))
)

select * from final
