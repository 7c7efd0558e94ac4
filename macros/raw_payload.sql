{% macro raw_payload(columns, prefix='') -%}
    {#- 'col=value; …' of the given raw columns as text, for quarantine rows. ``prefix``:
        where the columns are carried under another name (raw_columns' ``_raw__``). -#}
    {%- set parts = [] -%}
    {%- for col in columns -%}
        {%- do parts.append("'" ~ col ~ "='") -%}
        {%- do parts.append("coalesce(cast(" ~ prefix ~ col ~ " as " ~ dbt.type_string() ~ "), 'NULL')") -%}
        {%- if not loop.last %}{% do parts.append("'; '") %}{% endif -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}

{% macro raw_columns(columns, relation='') -%}
    {#- The raw columns carried as _raw__<col> (from ``relation``'s _raw__ columns when
        given), so a base model builds raw_payload in its last step for rejected rows only:
        building it for every row costs more than the rest of the projection. -#}
    {%- for col in columns -%}
        {{ relation ~ '._raw__' ~ col if relation else col }} as _raw__{{ col }}{{ ',' if not loop.last }}
    {% endfor -%}
{%- endmacro %}
