-- One row per erased address: the SHA-256 of its trimmed, lower-cased form.
with source as (
    select * from {{ source('segwise_ops', 'erasure_requests') }}
),

final as (
    select
        email_sha256,
        min(requested_at) as requested_at
    from source
    group by email_sha256
)

select * from final
