{#- What differs on Spark (dbt-spark) beyond single functions. -#}

{#- The incremental models' materialization. dbt-spark's incremental strategies need a
    table format with row-level changes (Delta, Iceberg, Hudi: `merge`) for what these
    models do (delete+insert of judged rows, deletes by segment); on plain Parquet tables,
    as in the local session, they are rebuilt as tables on every run. -#}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'segwise')()) }}
{%- endmacro %}

{% macro default__incremental_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__incremental_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- dbt-spark's seed loader pastes each value into the insert unescaped in session mode
    (`sql % bindings`): a quote in a value ("Can't Lose Them") ends the literal. Render
    every value as an escaped Spark literal instead. -#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set sql -%}
        insert into {{ this.render() }} values
        {% for row in agate_table.rows -%}
            (
            {%- for col_name in agate_table.column_names -%}
                {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                {%- set value = row[loop.index0] -%}
                {%- if value is none -%}
                    cast(null as {{ type }})
                {%- else -%}
                    cast('{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ type }})
                {%- endif -%}
                {%- if not loop.last %}, {% endif -%}
            {%- endfor -%}
            ){%- if not loop.last %},{% endif %}
        {% endfor %}
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {{ return(sql) }}
{%- endmacro %}

{#- dbt-spark's dateadd spells each addition as nested unix-time arithmetic with null
    assertions (≈ 1 KB each, nested once more in every window start): a segment view's
    text then outgrows the Hive metastore's view-text column (32,700 characters on the
    embedded Derby metastore). Spark 3.3+ has the function itself. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}
