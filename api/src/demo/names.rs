//! Word lists for synthetic Vietnamese names and titles. Every person in the demo data set is
//! invented; the hamlet names are common place names of the region, not a real register.

/// Family names, with rough frequencies.
pub const SURNAMES: &[(&str, f64)] = &[
    ("Nguyễn", 30.0),
    ("Trần", 10.0),
    ("Lê", 8.0),
    ("Phạm", 6.0),
    ("Hoàng", 5.0),
    ("Vũ", 4.0),
    ("Đặng", 3.0),
    ("Bùi", 3.0),
    ("Đỗ", 3.0),
    ("Hồ", 1.5),
    ("Ngô", 2.0),
    ("Dương", 2.0),
    ("Lý", 1.0),
    ("Ma", 1.5),
    ("Lương", 1.5),
    ("La", 1.0),
];

pub const MALE_MIDDLE: &[&str] = &[
    "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Xuân", "Mạnh", "Thanh",
];
pub const FEMALE_MIDDLE: &[&str] = &[
    "Thị", "Thị", "Thị", "Thu", "Ngọc", "Thanh", "Minh", "Hồng", "Thùy",
];

pub const MALE_GIVEN: &[&str] = &[
    "Hùng", "Dũng", "Tuấn", "Hải", "Long", "Nam", "Thắng", "Cường", "Hòa", "Sơn", "Quân", "Trung",
    "Bình", "Phong", "Tùng", "Khánh", "Toàn", "Hiếu", "Kiên", "Thành", "Huy", "Việt", "Đạt", "Lâm",
    "Tiến",
];

pub const FEMALE_GIVEN: &[&str] = &[
    "Lan", "Hoa", "Hương", "Mai", "Linh", "Hà", "Thảo", "Trang", "Huyền", "Nga", "Yến", "Phương",
    "Hạnh", "Thủy", "Loan", "Vân", "Nhung", "Dung", "Oanh", "Hằng", "Giang", "Ngân", "Quỳnh",
];

/// Hamlet names for the communes (xã); "Cà Phê" is placed in Minh Lập on purpose.
pub const HAMLET_NAMES: &[&str] = &[
    "Làng Mới",
    "Đồng Thịnh",
    "Bản Tèn",
    "Na Long",
    "Đồng Chốc",
    "Hang Ne",
    "Trại Gião",
    "Khe Cốc",
    "Lân Đăm",
    "Thịnh Đức",
    "Đồng Bén",
    "Liên Phương",
    "Thác Lầm",
    "Mỏ Ba",
    "Tân Thành",
    "Tân Lập",
    "Tân Sơn",
    "Đồng Mây",
    "Bắc Sơn",
    "Nam Sơn",
    "Đồng Tâm",
    "Hòa Khê",
    "Minh Tân",
    "Làng Phan",
    "Làng Giếng",
    "Đèo Khế",
    "Khe Vàng",
    "Suối Găng",
    "Phú Thịnh",
    "Đồng Luông",
    "Gốc Thông",
    "Đồng Xiền",
    "Cầu Đá",
    "Bãi Bông",
    "La Đồng",
    "Ba Đình",
    "Hòa Tiến",
    "Quang Trung",
    "Đồng Cẩm",
    "Kim Cương",
    "Đồng Mỏ",
    "Tam Va",
    "Khe Rạc",
    "Mỹ Khánh",
    "Đồng Rôm",
    "Hợp Thành",
    "Văn Khánh",
    "Thống Nhất",
    "Đoàn Kết",
    "Trung Thành",
    "Cao Sơn",
    "Ao Rôm",
    "Lũng Hoài",
    "Cây Sung",
    "Đồng Lâm",
    "Làng Hỏa",
    "Khe Mong",
    "Đồng Bài",
    "Na Hoàng",
    "Bờ Đậu",
];

/// The name of xóm Cà Phê, the hamlet the product's figures are told about.
pub const CA_PHE: &str = "Cà Phê";

pub const END_REASONS: &[&str] = &[
    "Chuyển công tác",
    "Chuyển nơi cư trú",
    "Xin thôi tham gia vì lý do cá nhân",
    "Nghỉ hưu, kiện toàn lại tổ",
    "Đi làm ăn xa",
];

pub const DISSOLUTION_REASONS: &[&str] = &[
    "Sáp nhập xóm, hợp nhất với Tổ CNSCĐ của xóm liền kề",
    "Kiện toàn lại theo Quyết định của UBND xã sau khi sáp nhập thôn, xóm",
];

/// Activity templates: (kind, title, main digital service helped).
pub const ACTIVITY_TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "COMMUNITY_MEETING",
        "Họp tổ dân cư hướng dẫn cài đặt VNeID",
        "VNEID",
    ),
    (
        "COMMUNITY_MEETING",
        "Tuyên truyền dịch vụ công trực tuyến tại nhà văn hóa",
        "ONLINE_PUBLIC_SERVICE",
    ),
    (
        "COMMUNITY_MEETING",
        "Họp dân phổ biến thanh toán không dùng tiền mặt",
        "OTHER_CASHLESS_PAYMENT",
    ),
    (
        "COMMUNITY_MEETING",
        "Tuyên truyền kỹ năng phòng chống lừa đảo trực tuyến",
        "ONLINE_SAFETY",
    ),
    (
        "DOOR_TO_DOOR",
        "Hướng dẫn tận nhà kích hoạt tài khoản định danh điện tử mức 2",
        "VNEID",
    ),
    (
        "DOOR_TO_DOOR",
        "Hướng dẫn các hộ thanh toán tiền điện, nước qua ứng dụng",
        "UTILITY_BILL_PAYMENT",
    ),
    (
        "DOOR_TO_DOOR",
        "Hỗ trợ người cao tuổi cài đặt ứng dụng VNeID",
        "APP_INSTALL",
    ),
    (
        "DOOR_TO_DOOR",
        "Hướng dẫn hộ kinh doanh mở tài khoản và nhận thanh toán bằng mã QR",
        "OTHER_CASHLESS_PAYMENT",
    ),
    (
        "DOOR_TO_DOOR",
        "Hướng dẫn nộp hồ sơ đăng ký khai sinh trực tuyến tại nhà",
        "ONLINE_PUBLIC_SERVICE",
    ),
    (
        "HELP_DESK",
        "Hỗ trợ nộp hồ sơ trực tuyến tại bộ phận một cửa xã",
        "ONLINE_PUBLIC_SERVICE",
    ),
    (
        "HELP_DESK",
        "Trực hỗ trợ người dân làm thủ tục trên Cổng Dịch vụ công quốc gia",
        "ONLINE_PUBLIC_SERVICE",
    ),
    (
        "HELP_DESK",
        "Hỗ trợ tích hợp giấy tờ trên ứng dụng VNeID",
        "VNEID",
    ),
    (
        "TRAINING",
        "Tập huấn kỹ năng số cho thành viên Tổ CNSCĐ",
        "ONLINE_PUBLIC_SERVICE",
    ),
    (
        "TRAINING",
        "Tập huấn sử dụng chữ ký số cho hộ kinh doanh",
        "DIGITAL_SIGNATURE",
    ),
    (
        "TRAINING",
        "Tập huấn bán hàng nông sản trên sàn thương mại điện tử",
        "ECOMMERCE",
    ),
    (
        "ONLINE_GROUP",
        "Hướng dẫn nộp học phí không dùng tiền mặt trên nhóm Zalo khu dân cư",
        "TUITION_PAYMENT",
    ),
    (
        "ONLINE_GROUP",
        "Chia sẻ cảnh báo lừa đảo qua mạng trên nhóm Zalo",
        "ONLINE_SAFETY",
    ),
    (
        "ONLINE_GROUP",
        "Hướng dẫn thanh toán viện phí qua ứng dụng ngân hàng trên nhóm Zalo",
        "HOSPITAL_FEE_PAYMENT",
    ),
    (
        "OTHER",
        "Phối hợp nhà trường hướng dẫn phụ huynh nộp học phí trực tuyến",
        "TUITION_PAYMENT",
    ),
    (
        "OTHER",
        "Hỗ trợ người dân cài đặt ứng dụng ngân hàng số",
        "APP_INSTALL",
    ),
    (
        "OTHER",
        "Hỗ trợ hợp tác xã đưa sản phẩm chè lên sàn thương mại điện tử",
        "ECOMMERCE",
    ),
];

/// How often each kind occurs.
pub const KIND_WEIGHTS: &[(&str, f64)] = &[
    ("COMMUNITY_MEETING", 25.0),
    ("DOOR_TO_DOOR", 30.0),
    ("HELP_DESK", 10.0),
    ("TRAINING", 8.0),
    ("ONLINE_GROUP", 20.0),
    ("OTHER", 7.0),
];

/// Services an activity may also have helped with (besides its main one).
pub const SERVICES: &[&str] = &[
    "ONLINE_PUBLIC_SERVICE",
    "VNEID",
    "TUITION_PAYMENT",
    "HOSPITAL_FEE_PAYMENT",
    "UTILITY_BILL_PAYMENT",
    "OTHER_CASHLESS_PAYMENT",
    "ECOMMERCE",
    "DIGITAL_SIGNATURE",
    "ONLINE_SAFETY",
    "APP_INSTALL",
];

pub const DESCRIPTIONS: &[&str] = &[
    "Thành viên tổ hướng dẫn trực tiếp trên điện thoại của người dân.",
    "Phối hợp với công an xã và Đoàn Thanh niên thực hiện.",
    "Người dân được hướng dẫn từng bước, ưu tiên người cao tuổi.",
    "Phát tờ rơi hướng dẫn kèm mã QR tra cứu.",
    "Ghi nhận một số hộ chưa có điện thoại thông minh để hỗ trợ lần sau.",
];
