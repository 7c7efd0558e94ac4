{% macro is_valid_email(column) -%}
    {#- RFC 5321/5322 practical rules for a lower-cased address: at most 254 characters, a
        local part of at most 64 dot-separated atoms (no leading, trailing or doubled dot),
        one @, a domain of dot-separated labels of 1-63 letters, digits and inner hyphens
        (no label starting or ending with a hyphen) ending in an alphabetic or punycode
        top-level domain that is not a special-use name no mail can reach (arpa, invalid,
        local, localhost, onion; 'test' is kept for test environments). Quoted local parts,
        IP-literal domains, non-ASCII addresses and one-letter top-level domains are
        refused, as most ESPs refuse them. Checked against the email-validator package in
        tests/python/test_staging_attacks.py. -#}
    (length({{ column }}) <= 254
        and position('@' in {{ column }}) between 2 and 65
        and {{ segwise.full_match(column, segwise.email_pattern()) }}
        and not {{ segwise.full_match(column, '^.*[.@](arpa|invalid|local|localhost|onion)$') }})
{%- endmacro %}

{% macro email_pattern() -%}
    {%- set atom = "[a-z0-9!#$%&''*+/=?^_`|~-]+" -%}
    {%- set label = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?" -%}
    ^{{ atom }}(\.{{ atom }})*@({{ label }}\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$
{%- endmacro %}
