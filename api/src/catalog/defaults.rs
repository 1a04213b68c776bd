//! The standard codes every deployment starts with.
use cnscd_entity::codes::Aggregation;

/// (code, Vietnamese name, English name)
pub const ACTIVITY_KINDS: &[(&str, &str, &str)] = &[
    (
        "COMMUNITY_MEETING",
        "Họp tuyên truyền tại cộng đồng",
        "Community meeting",
    ),
    ("DOOR_TO_DOOR", "Hướng dẫn tận nhà", "Door-to-door visit"),
    (
        "HELP_DESK",
        "Hỗ trợ tại bộ phận một cửa",
        "Help desk at the one-stop office",
    ),
    ("TRAINING", "Tập huấn", "Training session"),
    (
        "ONLINE_GROUP",
        "Tuyên truyền qua nhóm trực tuyến",
        "Online group post",
    ),
    ("OTHER", "Hoạt động khác", "Other"),
];

/// (code, Vietnamese name, English name, counts as cashless payment)
pub const DIGITAL_SERVICES: &[(&str, &str, &str, bool)] = &[
    (
        "ONLINE_PUBLIC_SERVICE",
        "Dịch vụ công trực tuyến",
        "Online public service",
        false,
    ),
    (
        "VNEID",
        "Kích hoạt định danh điện tử VNeID mức 2",
        "VNeID level 2",
        false,
    ),
    (
        "TUITION_PAYMENT",
        "Thanh toán học phí không dùng tiền mặt",
        "Cashless tuition payment",
        true,
    ),
    (
        "HOSPITAL_FEE_PAYMENT",
        "Thanh toán viện phí không dùng tiền mặt",
        "Cashless hospital fee payment",
        true,
    ),
    (
        "UTILITY_BILL_PAYMENT",
        "Thanh toán tiền điện, nước không dùng tiền mặt",
        "Cashless utility bill payment",
        true,
    ),
    (
        "OTHER_CASHLESS_PAYMENT",
        "Thanh toán không dùng tiền mặt khác",
        "Other cashless payment",
        true,
    ),
    (
        "ECOMMERCE",
        "Đăng ký sàn thương mại điện tử",
        "E-commerce registration",
        false,
    ),
    ("DIGITAL_SIGNATURE", "Chữ ký số", "Digital signature", false),
    (
        "ONLINE_SAFETY",
        "Kỹ năng an toàn trên không gian mạng",
        "Online safety",
        false,
    ),
    ("APP_INSTALL", "Cài đặt ứng dụng", "App installation", false),
    ("OTHER", "Dịch vụ số khác", "Other digital service", false),
];

/// (code, Vietnamese name, English name)
pub const AFFILIATIONS: &[(&str, &str, &str)] = &[
    (
        "COMMUNE_OFFICIAL",
        "Cán bộ, công chức xã",
        "Commune official",
    ),
    ("POLICE", "Công an xã", "Commune police"),
    ("YOUTH_UNION", "Đoàn Thanh niên", "Youth Union"),
    ("WOMENS_UNION", "Hội Liên hiệp Phụ nữ", "Women's Union"),
    ("FARMERS_UNION", "Hội Nông dân", "Farmers' Union"),
    ("FATHERLAND_FRONT", "Mặt trận Tổ quốc", "Fatherland Front"),
    (
        "HAMLET_HEAD",
        "Trưởng thôn, tổ trưởng tổ dân phố",
        "Hamlet head",
    ),
    ("TEACHER", "Giáo viên", "Teacher"),
    ("BUSINESS", "Doanh nghiệp, hộ kinh doanh", "Business"),
    ("VOLUNTEER", "Tình nguyện viên", "Volunteer"),
    ("OTHER", "Khác", "Other"),
];

/// Reported data elements: (code, Vietnamese name, English name, aggregation).
/// FLOW sums over a period; REFERENCE takes the latest value reported for the period's year.
pub const REPORTED_ELEMENTS: &[(&str, &str, &str, Aggregation)] = &[
    (
        "DOSSIERS_ONLINE",
        "Số hồ sơ tiếp nhận trực tuyến",
        "Dossiers received online",
        Aggregation::Flow,
    ),
    (
        "DOSSIERS_TOTAL",
        "Tổng số hồ sơ tiếp nhận",
        "Dossiers received",
        Aggregation::Flow,
    ),
    (
        "EDOCS_EXCHANGED",
        "Số văn bản điện tử trao đổi",
        "E-documents exchanged",
        Aggregation::Flow,
    ),
    (
        "HH_BUSINESSES",
        "Số hộ kinh doanh",
        "Household businesses",
        Aggregation::Reference,
    ),
    (
        "HH_BUSINESSES_EPAY",
        "Số hộ kinh doanh chấp nhận thanh toán điện tử",
        "Household businesses accepting e-payment",
        Aggregation::Reference,
    ),
    ("POPULATION", "Dân số", "Population", Aggregation::Reference),
    (
        "HOUSEHOLDS",
        "Số hộ gia đình",
        "Households",
        Aggregation::Reference,
    ),
    (
        "ADULTS",
        "Số người trưởng thành",
        "Adults",
        Aggregation::Reference,
    ),
];

/// Derived state elements (taken at the period's end): (code, Vietnamese, English).
pub const STATE_ELEMENTS: &[(&str, &str, &str)] = &[
    ("ACTIVE_TEAMS", "Số Tổ CNSCĐ đang hoạt động", "Active teams"),
    ("HAMLETS", "Số thôn, tổ dân phố", "Hamlets"),
    (
        "HAMLETS_WITH_TEAM",
        "Số thôn, tổ dân phố có Tổ CNSCĐ",
        "Hamlets with an active team",
    ),
    ("ACTIVE_MEMBERS", "Số thành viên Tổ CNSCĐ", "Active members"),
];

/// An indicator: (code, Vietnamese name, English name, numerator, denominator, factor).
pub type IndicatorRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    f64,
);

/// The standard indicator catalogue (product.md).
pub const INDICATORS: &[IndicatorRow] = &[
    (
        "CNS01",
        "Tỷ lệ thôn, tổ dân phố có Tổ CNSCĐ",
        "Hamlets covered by a team",
        "HAMLETS_WITH_TEAM",
        Some("HAMLETS"),
        100.0,
    ),
    ("CNS02", "Số Tổ CNSCĐ", "Teams", "ACTIVE_TEAMS", None, 1.0),
    (
        "CNS03",
        "Thành viên trên 100 dân",
        "Members per 100 population",
        "ACTIVE_MEMBERS",
        Some("POPULATION"),
        100.0,
    ),
    (
        "CNS04",
        "Tỷ lệ thành viên là đoàn viên",
        "Youth Union share of members",
        "ACTIVE_MEMBERS_YOUTH_UNION",
        Some("ACTIVE_MEMBERS"),
        100.0,
    ),
    (
        "CNS05",
        "Số buổi tuyên truyền",
        "Community meetings held",
        "ACTIVITIES_COMMUNITY_MEETING",
        None,
        1.0,
    ),
    (
        "CNS06",
        "Lượt hộ được tiếp cận trên 100 hộ",
        "Household contacts per 100 households",
        "HOUSEHOLDS_REACHED",
        Some("HOUSEHOLDS"),
        100.0,
    ),
    (
        "CNS07",
        "Lượt người được hướng dẫn DVCTT",
        "People guided to online public services",
        "PEOPLE_ONLINE_PUBLIC_SERVICE",
        None,
        1.0,
    ),
    (
        "CNS08",
        "Lượt người được hỗ trợ thanh toán không dùng tiền mặt",
        "People helped to pay cashless",
        "PEOPLE_CASHLESS",
        None,
        1.0,
    ),
    (
        "CNS09",
        "Lượt người được hỗ trợ kích hoạt VNeID mức 2",
        "VNeID level-2 activations helped",
        "PEOPLE_VNEID",
        None,
        1.0,
    ),
    (
        "CNS10",
        "Hoạt động trên mỗi thành viên",
        "Activities per active member",
        "ACTIVITIES",
        Some("ACTIVE_MEMBERS"),
        1.0,
    ),
    (
        "EG01",
        "Tỷ lệ hồ sơ trực tuyến",
        "Share of dossiers received online",
        "DOSSIERS_ONLINE",
        Some("DOSSIERS_TOTAL"),
        100.0,
    ),
    (
        "EG02",
        "Số văn bản điện tử trao đổi",
        "E-documents exchanged",
        "EDOCS_EXCHANGED",
        None,
        1.0,
    ),
    (
        "DS01",
        "Tỷ lệ hộ kinh doanh thanh toán số",
        "Household businesses accepting e-payment",
        "HH_BUSINESSES_EPAY",
        Some("HH_BUSINESSES"),
        100.0,
    ),
];
