{#- A refresh (`segwise refresh --select tag:trigger`, var refresh_segments: the segment
    names) rebuilds the event models, the named segments and the bookkeeping after
    segment_memberships; segment_memberships then replaces the rows of those segments only,
    and every other segment keeps the rows of the last build. Without the var (every
    build) it replaces all rows. -#}

{% macro refreshing() -%}
    {{ return(segwise.run_var('refresh_segments') or []) }}
{%- endmacro %}

{#- After a membership branch: no rows when a refresh leaves this segment as it is. -#}
{% macro unless_refreshing(segment_name) -%}
    {%- set names = segwise.refreshing() -%}
    {%- if names and segment_name not in names %}
    where 1 = 0
    {%- endif -%}
{%- endmacro %}

{#- segment_memberships' pre-hook: forget the rows the run replaces. -#}
{% macro forget_refreshed_memberships() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        {{- segwise.where_refreshed() }}
    {%- endif -%}
{%- endmacro %}

{#- Where clause keeping the rows of the refreshed segments only (nothing in a build): what a
    refresh's tests of the rows it replaces read. -#}
{% macro where_refreshed(column='segment_name') -%}
    {%- set names = segwise.refreshing() -%}
    {%- if names %}
    where {{ column }} in ('{{ names | join("', '") }}')
    {%- endif -%}
{%- endmacro %}
