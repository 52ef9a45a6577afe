"""Chinese place-name text: traditional → simplified, punctuation, and name suffixes.

The table covers the traditional characters common in Chinese place names and addresses
(about 600); it is not a general converter, and needs no network or large dependency. Only
one-to-one mappings are listed: characters whose simplified form depends on the word (乾, 藉)
are left alone.
"""

from __future__ import annotations

from typing import Final

# Longest first: stripping "街道办事处" must win over "处"-less "街道".
SUFFIXES: Final = (
    "街道办事处",
    "社区居委会",
    "村民委员会",
    "居民委员会",
    "村委会",
    "居委会",
    "民族乡",
    "街道",
    "社区",
    "网格",
    "县",
    "市",
    "区",
    "镇",
    "乡",
    "村",
)
MIN_STEM: Final = 2

_TRADITIONAL: Final = (
    "縣鎮鄉區衛東陽陰灣嶺崗頭橋溝塢澗壩灘莊園圍場廠營關門廟龍鳳雙豐華興榮盧劉張陳楊黃"
    "趙吳鄭馬孫錢葉蕭許鄧馮韓謝羅峯巖岡濱滬湧潯瀋濟長廣寧陸蘇臺檯颱麗雲貴藍綠紅鐵銀銅"
    "錫鍾鐘郵電車軍陣隊際陝險隱隨雞鳥鴨鵝鶴鷹魚鯉龜驛驢豬貓蠶麥穀糧種農礦窯爐燈燒鹽氣"
    "漁獵網線紡織絲綿錦繡書學黨醫藥療補協會團聯勝權樂歡寶貝財順義禮儀賢聖愛僑傳價億倉"
    "個們來從後復複徑應慶憲懷態戰擴據擁撫擇敗數斷時晉曉曆歷條楓極樓樹樁橫檢櫻歐歲歸殘"
    "漢湯溫滿潔潛澤濤濕灃點為烏無煙熱爺牆獅環現瑤瓊產畝畢異當疊發盤眾碼確禦禪稅稱積穩"
    "窮競筆築簡紀約納紙級細終組結給統經維緊編緣總繞續習聞聲肅臨舉舊蘆蘭處號蝦術裝製見"
    "規視親覺觀計記設證評試詩話認誠語說課調談請論諸講譚識議護讀變讓貨買費賀資賈賓賞賴"
    "贊趕躍軒輕輝轉辦運過達遠適遷選遺邊釀釋裡裏針釣鈴鉛鋒鋪鍋鏡開閑間閣閩闊階隴雜離難"
    "霧靈靜頁項須預領題顏願類顧風飛飯館駐驗體魯鮮鳴鴻鵬齊龐廬嶼島嶽峽巒壟壇墾堯塊塵壺"
    "壽奪奮婦寬實審寫將專尋對導屬幫帶幹廢廳強彎徵憶懸戶掃揚換擊擔攔棗棧槍構標樞機櫃欄"
    "沖況淺淵測準滄滾漲潤濁濃瀏灑煉燦爭獎瑪琿畫疇監盡碩磚祿禎窩筍篤簽籃籠紋紗紹絡綜綏"
    "綱緒繩繪聰職臘艷萬蔣蔥薑薦薩藝蘊虛蟲覽訓託訪詞誌譜貢貿賣賦贏趨蹟較載輔輪轄辭邁鄒"
    "鈞鋼錄鎖閏閘韋響頂頌頓顯飄餘饒騰驅鬆鹼齋嶴壋墊淪漣滸灤瀘潁閬鄲鄴贛隸虯埡畬勞兩嚴"
    "亞偉傑僕優兒內凱劍勵勢匯圖堅報塗夢奧妝嬌屢峴崑嶸帥師庫廂彥徹恆悅惡愷憑戀鑒鑑鑼鑽"
    "韻騎鬱齡"
)
_SIMPLIFIED: Final = (
    "县镇乡区卫东阳阴湾岭岗头桥沟坞涧坝滩庄园围场厂营关门庙龙凤双丰华兴荣卢刘张陈杨黄"
    "赵吴郑马孙钱叶萧许邓冯韩谢罗峰岩冈滨沪涌浔沈济长广宁陆苏台台台丽云贵蓝绿红铁银铜"
    "锡钟钟邮电车军阵队际陕险隐随鸡鸟鸭鹅鹤鹰鱼鲤龟驿驴猪猫蚕麦谷粮种农矿窑炉灯烧盐气"
    "渔猎网线纺织丝绵锦绣书学党医药疗补协会团联胜权乐欢宝贝财顺义礼仪贤圣爱侨传价亿仓"
    "个们来从后复复径应庆宪怀态战扩据拥抚择败数断时晋晓历历条枫极楼树桩横检樱欧岁归残"
    "汉汤温满洁潜泽涛湿沣点为乌无烟热爷墙狮环现瑶琼产亩毕异当叠发盘众码确御禅税称积稳"
    "穷竞笔筑简纪约纳纸级细终组结给统经维紧编缘总绕续习闻声肃临举旧芦兰处号虾术装制见"
    "规视亲觉观计记设证评试诗话认诚语说课调谈请论诸讲谭识议护读变让货买费贺资贾宾赏赖"
    "赞赶跃轩轻辉转办运过达远适迁选遗边酿释里里针钓铃铅锋铺锅镜开闲间阁闽阔阶陇杂离难"
    "雾灵静页项须预领题颜愿类顾风飞饭馆驻验体鲁鲜鸣鸿鹏齐庞庐屿岛岳峡峦垄坛垦尧块尘壶"
    "寿夺奋妇宽实审写将专寻对导属帮带干废厅强弯征忆悬户扫扬换击担拦枣栈枪构标枢机柜栏"
    "冲况浅渊测准沧滚涨润浊浓浏洒炼灿争奖玛珲画畴监尽硕砖禄祯窝笋笃签篮笼纹纱绍络综绥"
    "纲绪绳绘聪职腊艳万蒋葱姜荐萨艺蕴虚虫览训托访词志谱贡贸卖赋赢趋迹较载辅轮辖辞迈邹"
    "钧钢录锁闰闸韦响顶颂顿显飘余饶腾驱松碱斋岙垱垫沦涟浒滦泸颍阆郸邺赣隶虬垭畲劳两严"
    "亚伟杰仆优儿内凯剑励势汇图坚报涂梦奥妆娇屡岘昆嵘帅师库厢彦彻恒悦恶恺凭恋鉴鉴锣钻"
    "韵骑郁龄"
)

_DROPPED: Final = " \t\r\n\u3000,，.。、·•-－—_()（）[]【】「」\"'“”‘’:：;；/\\|#＃"
_FULL_WIDTH_DIGITS: Final = "０１２３４５６７８９"

_SIMPLIFY: Final = str.maketrans(_TRADITIONAL, _SIMPLIFIED)
_NORMALIZE: Final[dict[int, int | None]] = {
    **_SIMPLIFY,
    **str.maketrans(_FULL_WIDTH_DIGITS, "0123456789"),
    **dict.fromkeys(map(ord, _DROPPED)),
}


def simplify(text: str) -> str:
    """``text`` with the traditional characters of the table replaced by simplified ones."""
    return text.translate(_SIMPLIFY)


def normalize(text: str) -> str:
    """Simplified, without spaces or punctuation, full-width digits as ASCII.

    Address text and grid names both go through this before they are compared.
    """
    return text.translate(_NORMALIZE)


def stem(name: str) -> str | None:
    """A normalized name without its administrative suffix (横坑村 → 横坑), if that leaves at
    least two characters; None otherwise, since one character alone matches too much."""
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= MIN_STEM:
            return name[: -len(suffix)]
    return None
