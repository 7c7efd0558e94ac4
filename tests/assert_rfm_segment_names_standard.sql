-- The seed only uses the standard RFM segment names.
select rfm_segment
from {{ ref('rfm_segment_map') }}
where rfm_segment not in (
    'Champions', 'Loyal', 'Potential Loyalist', 'New', 'Promising', 'Need Attention',
    'About to Sleep', 'At Risk', 'Can''t Lose Them', 'Hibernating', 'Lost'
)
