{#- Incremental event base models (web and email events): the loader's _loaded_at drives
    what is new, in the style of Snowplow's and Fivetran's packages.

    A base model holds one row per raw row, so once judged it holds as many rows of each
    load stamp as raw does. A run judges the raw rows of every stamp raw holds more rows of
    than the model (a new load, a file that landed late under its own older stamp, rows
    appended under a stamp already seen), of every stamp less than
    var('incremental_lookback_hours') older than the newest stamp held (the lookback, for
    a loader that rewrites rows in place under the same stamp and count; 0 by default), and
    the rows without a stamp. Every raw copy of an event id among them is judged with them,
    so deduplication on the natural key sees all copies whichever batch they came in; so
    is every event judged 'future_timestamp' before (it may be due by now). First, the
    pre-hook forgets the rows of every stamp raw now holds fewer rows of (deleted at the
    source, erased by `segwise forget`, replaced by a loader) and every row sharing an
    event id with them: the run judges those stamps again from what raw still holds.

    `segwise build --full-refresh` (dbt build --full-refresh) rebuilds from raw: needed
    after changing the event vocabularies, the plausibility bounds or the source time
    zone, and after replacing raw with different rows under the same stamps and counts. -#}

{% macro _stamp_counts(relation) -%}
    select _loaded_at, count(*) as n
    from {{ relation }}
    where _loaded_at is not null
    group by _loaded_at
{%- endmacro %}

{#- Where clause over the raw rows of ``source``: the rows an incremental run judges;
    nothing in a full build.
    The model's first CTE applies it, before any cleaning: the rows of the unjudged
    stamps, and every raw row (found by its raw id, kept in _raw_key when cleaning
    changed it) of an event id they carry or that was judged 'future_timestamp'. -#}
{% macro rejudged_rows(key, source) -%}
    {%- if is_incremental() %}
    where _loaded_at is null
        or _loaded_at in ({{ segwise._unjudged_stamps(source) }})
        or {{ key }} in (
            select coalesce(_raw_key, {{ key }})
            from {{ this }}
            where {{ key }} in (
                    select {{ segwise.clean_id(key) }}
                    from {{ source }}
                    where _loaded_at is null
                        or _loaded_at in ({{ segwise._unjudged_stamps(source) }})
                )
                or _quarantine_reason = 'future_timestamp'
        )
    {%- endif %}
{%- endmacro %}

{#- The load stamps raw holds more rows of than the model, and those within the lookback. -#}
{% macro _unjudged_stamps(source) -%}
    {{ segwise._stamps_with_more_rows(source, than=this) }}
    union all
    select distinct _loaded_at
    from {{ this }}
    where _loaded_at > (
        select {{ dbt.dateadd('hour', -1 * var('incremental_lookback_hours') | int, 'max(_loaded_at)') }}
        from {{ this }}
    )
{%- endmacro %}

{#- Pre-hook: forget the rows of every stamp ``source`` now holds fewer rows of, every row
    sharing an event id with them, and the rows without a stamp: the run judges their
    stamps again from what raw holds. -#}
{% macro forget_changed_loads(key, source) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where _loaded_at is null
            or _loaded_at in ({{ segwise._changed_stamps(source) }})
            or {{ key }} in (
                select {{ key }} from {{ this }}
                where _loaded_at in ({{ segwise._changed_stamps(source) }})
            )
    {%- endif -%}
{%- endmacro %}

{% macro _changed_stamps(source) -%}
    {{ segwise._stamps_with_more_rows(this, than=source) }}
{%- endmacro %}

{#- The load stamps ``relation`` holds more rows of than ``than`` (or ``than`` has none of). -#}
{% macro _stamps_with_more_rows(relation, than) -%}
    select more._loaded_at
    from ({{ segwise._stamp_counts(relation) }}) as more
    left join ({{ segwise._stamp_counts(than) }}) as fewer
        on more._loaded_at = fewer._loaded_at
    where fewer.n is null or fewer.n < more.n
{%- endmacro %}

{#- The raw id when cleaning changed it (null when it did not), so a later run finds the raw
    copies of an event by their raw ids without cleaning every raw row again. -#}
{% macro raw_key(key) -%}
    case when _raw__{{ key }} is distinct from {{ key }} then _raw__{{ key }} end
{%- endmacro %}

{#- The key an incremental run replaces rows by (delete+insert): the event id, or for a row
    without one (quarantined as missing_event_id) a digest of its raw payload and load
    stamp, so a row judged again replaces itself instead of appearing twice. -#}
{% macro event_row_key(key, payload) -%}
    case
        when {{ key }} is not null then {{ key }}
        else {{ dbt.concat(["'~'", dbt.hash(dbt.concat([payload, "'@'", "coalesce(cast(_loaded_at as " ~ dbt.type_string() ~ "), 'NULL')"]))]) }}
    end
{%- endmacro %}
