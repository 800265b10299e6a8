#!/usr/bin/env python3
"""Deterministic benchmark mail: N messages as a Maildir or an mbox.

The mix is what a small support/sales team's mailbox sees: new requests (some forwarded by
staff), threaded replies (In-Reply-To/References to earlier messages, some with a [#N] tag),
refusal-survey answers, courier delivery notices, HTML-only satisfaction web forms, shop
orders and mail from partner companies (invoices, tracker updates, stock reports, robot
notices). Russian and English; UTF-8, windows-1251 and KOI8-R; quoted-printable, base64 and
8bit bodies; RFC 2047 subjects; a few 20-200 KB attachments. The same seed gives the same
bytes. Python 3 standard library only.

    gen_corpus.py --count 20000 --format maildir --out DIR [--seed 1] [--big-mb 25]
                  [--mix project|heavy]
"""

import argparse
import base64
import os
import quopri
import random
import sys
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

START = datetime(2026, 11, 2, 8, 0, 0, tzinfo=timezone(timedelta(hours=3)))

RU_FIRST = ["Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей",
            "Наталья", "Павел", "Татьяна", "Андрей", "Юлия", "Николай", "Светлана", "Михаил"]
RU_LAST = ["Иванова", "Петров", "Смирнова", "Кузнецов", "Попова", "Соколов", "Лебедева",
           "Козлов", "Новикова", "Морозов", "Волкова", "Павлов", "Фёдорова", "Егоров"]
EN_FIRST = ["John", "Emma", "Oliver", "Sophie", "Jack", "Grace", "Harry", "Chloe", "Lucas"]
EN_LAST = ["Smith", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Hughes", "Clarke"]
TRANSLIT = ["anna", "ivan", "maria", "sergey", "olga", "dmitry", "elena", "alexey", "natalia",
            "pavel", "tatiana", "andrey", "julia", "nikolay", "svetlana", "mikhail"]
CLIENT_DOMAINS = ["mail.example", "yandex.example", "gmail.example", "inbox.example",
                  "corp-client.example", "rambler.example", "bk.example", "list.example"]
STAFF = ["manager", "sales", "lead", "ivanov", "petrova", "helpdesk"]

RU_SUBJECTS = [
    "Не работает личный кабинет", "Вопрос по счёту", "Прошу выставить счёт",
    "Сроки поставки", "Ошибка при оплате", "Возврат товара", "Нужна консультация",
    "Изменение реквизитов", "Заявка на подключение", "Не пришло письмо с паролем",
    "Перенос даты доставки", "Коммерческое предложение", "Гарантийный случай",
    "Проблема с доступом к отчётам", "Запрос документов для бухгалтерии",
]
EN_SUBJECTS = [
    "Cannot log in to the portal", "Question about invoice", "Delivery date",
    "Payment failed", "Request for quotation", "Broken item in the last order",
    "Change of billing address", "API access request", "Password reset does not work",
]
RU_SENTENCES = [
    "Добрый день!", "Здравствуйте.",
    "Со вчерашнего дня не могу войти в личный кабинет, пишет «неверный пароль».",
    "Прошу помочь разобраться, заказ нужен до конца недели.",
    "Оплату провели ещё в понедельник, платёжное поручение во вложении.",
    "Подскажите, пожалуйста, когда ожидать поставку по нашему договору.",
    "В прошлый раз менеджер обещал перезвонить, но так и не перезвонил.",
    "Нам нужно изменить юридический адрес в документах.",
    "Товар пришёл с повреждённой упаковкой, фотографии прикладываю.",
    "Просим выставить счёт на 12 лицензий с годовым обслуживанием.",
    "Если нужна дополнительная информация, звоните в любое время.",
    "Бухгалтерия просит прислать акт сверки за третий квартал.",
    "При оплате картой страница зависает и деньги не списываются.",
    "Уточните, пожалуйста, есть ли скидка при заказе от ста единиц.",
    "Мы готовы подписать договор, если условия останутся прежними.",
    "Доставку нужно перенести на следующий вторник, на складе инвентаризация.",
    "Спасибо за быструю помощь в прошлый раз!",
    "Ответ нужен сегодня, у нас горят сроки по проекту.",
    "Проверили ещё раз — ошибка повторяется в разных браузерах.",
    "Приложите, пожалуйста, сертификат соответствия к накладной.",
    "Ждём ваш ответ. Заранее благодарим.",
    "Курьер не смог дозвониться, просим согласовать новое время.",
    "Сумма в счёте не совпадает с суммой в коммерческом предложении.",
    "Наш ИНН 7701234567, КПП 770101001, реквизиты банка прежние.",
]
EN_SENTENCES = [
    "Hello,", "Hi team,",
    "Since yesterday I cannot log in to the customer portal.",
    "The payment was made on Monday, the receipt is attached.",
    "Could you please tell me when the order will be shipped?",
    "The parcel arrived damaged, photos attached.",
    "We need an updated invoice with our new billing address.",
    "Please call me back at your earliest convenience.",
    "The error happens in every browser we tried.",
    "Is there a volume discount for orders above one hundred units?",
    "Thanks for the quick help last time!",
    "We are ready to sign if the terms stay the same.",
    "Looking forward to your reply.",
]
RU_SIGN = ["С уважением,", "Спасибо,", "Всего доброго,"]
EN_SIGN = ["Best regards,", "Kind regards,", "Thanks,"]
REASONS = ["Дорого", "Не устроили сроки", "Выбрали другого поставщика", "Другое"]
REASON_COMMENTS = ["нашли дешевле", "долго ждать поставку", "руководство решило иначе",
                   "не было нужной модели", "передумали", ""]
SPEED = ["тут же", "быстро", "нормально", "медленно"]
GRADE = ["отлично", "хорошо", "плохо", "очень плохо"]
MAILERS = ["Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Mozilla Thunderbird 128.3",
           "Roundcube Webmail/1.6", None, None]

# Message kinds and their weights in the mix.
MIX = [
    ("request", 22), ("reply", 18), ("survey", 7), ("delivery", 5), ("satisfaction", 6),
    ("order", 4), ("partner", 38),
]

# The mixes `--mix` picks from. "project" is the corpus every figure in BENCHMARKS.md was
# measured on; "heavy" is the second corpus of issue 18, generated with other weights: more
# HTML mail, long threads, more attachments and busy robot senders.
MIXES = {
    "project": {"kinds": MIX, "alternative": 0.35, "attachments": 1.0, "thread_spread": 40,
                "references": 12, "busy_partners": 0.0},
    "heavy": {"kinds": [("request", 14), ("reply", 30), ("survey", 4), ("delivery", 14),
                        ("satisfaction", 12), ("order", 4), ("partner", 22)],
              # 3 of 4 human messages with an HTML part; replies pile onto the last few
              # threads (References up to 40 ids); attachments 4 times as often; half the
              # partner mail from 10 busy robots.
              "alternative": 0.75, "attachments": 4.0, "thread_spread": 6,
              "references": 40, "busy_partners": 0.5},
}


class Corpus:
    """Generates messages one by one, remembering what later replies and notices refer to."""

    def __init__(self, seed: int, mix: str = "project"):
        self.rng = random.Random(seed)
        self.mix = MIXES[mix]
        self.seq = 0
        self.threads = []  # (message_id, references, subject, client address, task guess, ru)
        self.orders = []  # order numbers seen in shop orders
        self.tasks = 0  # a guess at the task count, for [#N] tags
        self.kinds, weights = zip(*self.mix["kinds"])
        self.cum = []
        total = 0
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    # ---- helpers ---------------------------------------------------------------------------

    def pick_kind(self) -> str:
        x = self.rng.uniform(0, self.total)
        for kind, c in zip(self.kinds, self.cum):
            if x <= c:
                return kind
        return self.kinds[-1]

    def date(self) -> datetime:
        return START + timedelta(seconds=37 * self.seq)

    def message_id(self, domain: str) -> str:
        return f"<{self.seq:07d}.{self.rng.getrandbits(40):010x}@{domain}>"

    def client(self, ru: bool):
        i = self.rng.randrange(len(RU_FIRST))
        if ru:
            name = f"{RU_FIRST[i]} {self.rng.choice(RU_LAST)}"
        else:
            name = f"{self.rng.choice(EN_FIRST)} {self.rng.choice(EN_LAST)}"
        local = f"{TRANSLIT[i]}.{self.rng.randrange(1000)}"
        return name, f"{local}@{self.rng.choice(CLIENT_DOMAINS)}"

    def text(self, ru: bool, lo: int, hi: int) -> str:
        pool = RU_SENTENCES if ru else EN_SENTENCES
        out, size = [], self.rng.randint(lo, hi)
        para = []
        while sum(len(s) for s in out) < size:
            para.append(self.rng.choice(pool[2:]))
            if len(para) >= self.rng.randint(2, 5):
                out.append(" ".join(para))
                para = []
        if para:
            out.append(" ".join(para))
        greeting = self.rng.choice(pool[:2])
        return greeting + "\n\n" + "\n\n".join(out) + "\n"

    def charset(self, ru: bool) -> str:
        if not ru:
            return "utf-8"
        x = self.rng.random()
        return "utf-8" if x < 0.6 else ("windows-1251" if x < 0.85 else "koi8-r")

    def transfer(self) -> str:
        x = self.rng.random()
        return "quoted-printable" if x < 0.5 else ("base64" if x < 0.8 else "8bit")

    def received(self, domain: str) -> list:
        hops = []
        d = self.date()
        for i in range(self.rng.randint(2, 4)):
            hop_time = (d + timedelta(seconds=i)).strftime("%a, %d %b %Y %H:%M:%S %z")
            hops.append((
                "Received",
                f"from mx{i + 1}.{domain} (mx{i + 1}.{domain} [192.0.2.{10 + i}])\n"
                f"\tby mx.acme.example (Postfix) with ESMTPS id {self.rng.getrandbits(36):09X}\n"
                f"\tfor <{world.SUPPORT_ADDRESS}>; {hop_time}",
            ))
        return hops

    # ---- message kinds ---------------------------------------------------------------------

    def request(self):
        ru = self.rng.random() < 0.75
        name, addr = self.client(ru)
        subject = self.rng.choice(RU_SUBJECTS if ru else EN_SUBJECTS)
        body = self.text(ru, 900, 3200)
        sign = self.rng.choice(RU_SIGN if ru else EN_SIGN)
        body += f"\n{sign}\n{name}\n+7 (9{self.rng.randrange(10, 99)}) {self.rng.randrange(100, 999)}-{self.rng.randrange(10, 99)}-{self.rng.randrange(10, 99)}\n"
        sender_name, sender = name, addr
        if self.rng.random() < 0.06:
            # A staff member forwards the client's mail: the client is the requester.
            staff = f"{self.rng.choice(STAFF)}@{world.STAFF_DOMAIN}"
            sender_name, sender = "Менеджер ACME", staff
            when = (self.date() - timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M")
            body = ("Коллеги, посмотрите, пожалуйста.\n\n"
                    "---------- Forwarded message ---------\n"
                    f"From: {name} <{addr}>\nDate: {when}\nSubject: {subject}\n"
                    f"To: {staff}\n\n" + body)
            subject = "Fwd: " + subject
        self.tasks += 1
        mid = self.message_id(addr.split("@")[1])
        self.threads.append((mid, [mid], subject, addr, self.tasks, ru, name))
        headers = [("From", (sender_name, sender)), ("To", world.SUPPORT_ADDRESS),
                   ("Subject", subject), ("Message-ID", mid)]
        return headers, body, ru, self.alternative_or_plain(), self.maybe_attachment(0.02)

    def reply(self):
        if not self.threads:
            return self.request()
        # Recent threads are more likely to get replies.
        spread = self.mix["thread_spread"]
        i = len(self.threads) - 1 - min(int(self.rng.expovariate(1 / spread)),
                                        len(self.threads) - 1)
        mid0, refs, subject0, addr, task, ru, name = self.threads[i]
        base = subject0[5:] if subject0.startswith("Fwd: ") else subject0
        while base.startswith("Re: "):
            base = base[4:]
        tag = f" [#{task}]" if self.rng.random() < 0.4 and "[#" not in base else ""
        subject = f"Re: {base}{tag}"
        who = self.rng.random()
        if who < 0.3:
            sender_name, sender = "Менеджер ACME" if ru else "ACME support", \
                f"{self.rng.choice(STAFF)}@{world.STAFF_DOMAIN}"
        elif who < 0.35:
            sender_name, sender = name, f"{addr.split('@')[0]}@another-{self.rng.randrange(9)}.example"
        else:
            sender_name, sender = name, addr
        own = self.text(ru, 200, 900)
        quoted_from = refs[-1]
        when = self.date().strftime("%d.%m.%Y %H:%M") if ru else self.date().strftime("%a, %b %d, %Y at %H:%M")
        header = f"{when}, {name} <{addr}> пишет:" if ru else f"On {when} {name} <{addr}> wrote:"
        quote_src = self.text(ru, 300, 1500)
        if self.rng.random() < 0.5:
            quoted = "\n".join("> " + line if line else ">" for line in quote_src.splitlines())
            body = f"{own}\n{header}\n{quoted}\n"
        else:
            body = (f"{own}\n-----Original Message-----\nFrom: {name} <{addr}>\n"
                    f"Sent: {when}\nSubject: {base}\n\n{quote_src}")
        mid = self.message_id(sender.split("@")[1])
        refs = (refs + [mid])[-self.mix["references"]:]
        self.threads[i] = (mid0, refs, subject0, addr, task, ru, name)
        headers = [("From", (sender_name, sender)), ("To", world.SUPPORT_ADDRESS),
                   ("Subject", subject), ("Message-ID", mid), ("In-Reply-To", quoted_from),
                   ("References", " ".join(refs[:-1]))]
        return headers, body, ru, self.alternative_or_plain(), self.maybe_attachment(0.01)

    def survey(self):
        if self.tasks < 5:
            return self.request()
        task = self.rng.randint(1, max(1, self.tasks // 2))
        comment = self.rng.choice(REASON_COMMENTS)
        if self.rng.random() < 0.7:
            title = "Причина отказа"
            day = (self.date() - timedelta(days=self.rng.randrange(30))).strftime("%d.%m.%Y")
            answers = f"Причина: {self.rng.choice(REASONS)}\nКомментарий: {comment}\nДата: {day}\n"
        else:
            title = "Оценка доставки"
            answers = f"Оценка: {self.rng.randint(1, 5)}\nКомментарий: {comment}\n"
        body = (f"Ответ на опрос «{title}»\n\n{answers}--\n"
                "Это письмо отправлено автоматически сервисом опросов.\n"
                "Пожалуйста, не отвечайте на него.\n")
        headers = [("From", ("Сервис опросов", world.SURVEY_SENDER)),
                   ("To", world.SUPPORT_ADDRESS),
                   ("Subject", f"Опрос: {title} [#{task}]"),
                   ("Message-ID", self.message_id("survey.example")),
                   ("Auto-Submitted", "auto-generated")]
        return headers, body, True, "plain", None

    def delivery(self):
        if not self.orders:
            return self.order()
        order = self.rng.choice(self.orders[-400:])
        when = self.date().strftime("%d.%m.%Y %H:%M")
        body = (f"Здравствуйте!\n\nЗаказ №{order} доставлен {when}.\n"
                f"Получатель: {self.rng.choice(RU_FIRST)} {self.rng.choice(RU_LAST)}\n"
                f"Курьер: {self.rng.choice(RU_FIRST)}\nТрек-номер: CR{self.rng.randrange(10**9):09d}\n\n"
                "Служба доставки Courier.example\n")
        headers = [("From", ("Курьерская служба", world.COURIER_SENDER)),
                   ("To", world.SUPPORT_ADDRESS),
                   ("Subject", f"Заказ №{order} доставлен"),
                   ("Message-ID", self.message_id("courier.example")),
                   ("Auto-Submitted", "auto-generated")]
        return headers, body, True, "plain", None

    def satisfaction(self):
        speed, grade = self.rng.choice(SPEED), self.rng.choice(GRADE)
        manager = f"{self.rng.choice(RU_FIRST)} {self.rng.choice(RU_LAST)}"
        html = ("<!DOCTYPE html><html><head><meta charset=\"{charset}\">"
                "<style>p {{ color: #333 }} td {{ padding: 4px }}</style></head><body>\n"
                "<h3>Анкета удовлетворенности</h3>\n"
                f"<p><b>Насколько быстро ответил менеджер?</b> {speed}</p>\n"
                f"<p><b>Оцените работу менеджера:</b> {grade}</p>\n"
                f"<p><b>Менеджер:</b> {manager}</p>\n"
                "<p>Форма: <a href=\"https://webform.example/f/42\">Оценка качества</a></p>\n"
                "<p style=\"color:#888\">Отправлено с сайта acme.example</p>\n</body></html>\n")
        headers = [("From", ("Форма на сайте", world.WEBFORM_SENDER)), ("To", world.SUPPORT_ADDRESS),
                   ("Subject", "Анкета: оценка работы менеджера"),
                   ("Message-ID", self.message_id("webform.example"))]
        return headers, html, True, "html", None

    def order(self):
        number = 10000 + self.seq
        self.orders.append(number)
        self.tasks += 1
        name, addr = self.client(True)
        items = "\n".join(
            f"{j + 1}. Товар {self.rng.randrange(1000, 9999)} — {self.rng.randint(1, 9)} шт."
            for j in range(self.rng.randint(1, 6)))
        body = (f"Новый заказ №{number}\n\nПокупатель: {name}\nEmail: {addr}\n"
                f"Телефон: +7 900 {self.rng.randrange(100, 999)}-{self.rng.randrange(10, 99)}-{self.rng.randrange(10, 99)}\n"
                f"Сумма: {self.rng.randrange(500, 90000)} руб.\n\nСостав заказа:\n{items}\n")
        headers = [("From", ("Интернет-магазин", f"orders@{world.SHOP_SENDER_DOMAIN}")),
                   ("To", world.SUPPORT_ADDRESS), ("Subject", f"Новый заказ №{number}"),
                   ("Message-ID", self.message_id(world.SHOP_SENDER_DOMAIN))]
        return headers, body, True, "plain", None

    def partner(self):
        # The project's mix draws nothing here, so that its corpus stays byte for byte.
        busy = self.mix["busy_partners"] > 0 and self.rng.random() < self.mix["busy_partners"]
        k = self.rng.randrange(10 if busy else world.PARTNERS)
        kind = world.partner_kind(k)
        domain = world.partner_domain(k)
        sender = world.partner_sender(k)
        extra = []
        attach = None
        ru = True
        if kind == "invoice":
            number = self.rng.randrange(100, 99999)
            amount = f"{self.rng.randrange(1, 999)} {self.rng.randrange(100, 999)}"
            subject = f"Счёт №{number} от {self.date().strftime('%d.%m.%Y')}"
            body = (f"Добрый день!\n\nНаправляем счёт №{number} за услуги.\n"
                    f"Сумма к оплате: {amount} руб.\nСрок оплаты: 5 банковских дней.\n\n"
                    + self.text(True, 300, 900) + f"\nБухгалтерия {domain}\n")
            self.tasks += 1
            attach = self.maybe_attachment(0.05)
        elif kind == "ticket":
            ru = False
            ticket = self.rng.randrange(1, 5000)
            status = self.rng.choice(["In Progress", "Resolved", "Waiting for customer", "Closed"])
            subject = f"[{world.ticket_project(k)}-{ticket}] Status changed to {status}"
            body = (f"Ticket {world.ticket_project(k)}-{ticket} was updated.\n\n"
                    f"New status: {status}\nAssignee: {self.rng.choice(EN_FIRST)}\n\n"
                    + self.text(False, 300, 1200) + "\n-- \nThis is an automated message.\n")
            self.tasks += 1
            extra.append(("Auto-Submitted", "auto-generated"))
        elif kind == "report":
            period = f"{self.rng.randint(1, 12):02d}.2026"
            subject = f"Отчёт по остаткам за {period}"
            body = (f"Код отчёта: {world.report_code(k)}\nПериод: {period}\n"
                    f"Позиций: {self.rng.randrange(10, 900)}\n\n" + self.text(True, 400, 1600))
            self.tasks += 1
            attach = self.maybe_attachment(0.08)
        elif kind == "shop":
            number = 500000 + self.seq
            self.orders.append(number)
            name, addr = self.client(True)
            subject = f"Новый заказ №{number} в магазине {domain}"
            body = (f"Покупатель: {name}\nEmail: {addr}\nСумма: {self.rng.randrange(500, 90000)} руб.\n"
                    f"Доставка: курьером\n\n" + self.text(True, 200, 700))
            extra.append(("X-Shop-Id", world.shop_id(k)))
            self.tasks += 1
        else:  # notice
            subject = f"Уведомление: изменение тарифов {domain}"
            body = self.text(True, 600, 2400) + "\nОтписаться: https://" + domain + "/unsubscribe\n"
            extra += [("List-Unsubscribe", f"<https://{domain}/unsubscribe>"),
                      ("Precedence", "bulk")]
            self.tasks += 1
        headers = [("From", (domain.split("-")[0].capitalize(), sender)),
                   ("To", world.SUPPORT_ADDRESS), ("Subject", subject),
                   ("Message-ID", self.message_id(domain))] + extra
        return headers, body, ru, "plain", attach

    def alternative_or_plain(self) -> str:
        return "alternative" if self.rng.random() < self.mix["alternative"] else "plain"

    def maybe_attachment(self, p: float):
        if self.rng.random() >= p * self.mix["attachments"]:
            return None
        size = self.rng.randint(20 * 1024, 200 * 1024)
        kind = self.rng.choice([("application/pdf", "scan.pdf"), ("image/jpeg", "photo.jpg"),
                                ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                                 "Реестр.xlsx")])
        return kind[0], kind[1], self.rng.randbytes(size)

    # ---- assembly --------------------------------------------------------------------------

    def next(self, big_bytes: int = 0) -> bytes:
        self.seq += 1
        kind = self.pick_kind()
        headers, body, ru, shape, attach = getattr(self, kind)()
        if big_bytes:
            attach = ("application/zip", "архив.zip", self.rng.randbytes(big_bytes))
        return self.assemble(headers, body, ru, shape, attach)

    def assemble(self, headers, body, ru, shape, attach) -> bytes:
        charset = self.charset(ru)
        # KOI8-R has no dashes or guillemets (mailers write plain ones) and no «№» (they pick
        # another charset).
        texts = [body] + [v if isinstance(v, str) else v[0] for _, v in headers]
        for fallback in (charset, "windows-1251", "utf-8"):
            try:
                for t in texts:
                    plain(t, fallback).encode(fallback)
                charset = fallback
                break
            except UnicodeEncodeError:
                continue
        out = []
        from_addr = headers[0][1][1]
        out += self.received(from_addr.split("@")[1])
        out.append(("Date", self.date().strftime("%a, %d %b %Y %H:%M:%S %z")))
        for name, value in headers:
            if name == "From":
                display, addr = value
                out.append(("From", f"{encode_words(display, charset, self.rng)} <{addr}>"))
            elif name == "Subject":
                out.append(("Subject", encode_words(value, charset, self.rng)))
            else:
                out.append((name, value))
        out.append(("MIME-Version", "1.0"))
        mailer = self.rng.choice(MAILERS)
        if mailer:
            out.append(("X-Mailer", mailer))

        if shape == "html":
            part = leaf("text/html", body.replace("{charset}", charset), charset, self.transfer())
        elif shape == "alternative":
            html = "<html><body>" + "".join(
                f"<p>{p.replace(chr(10), '<br>')}</p>" for p in body.split("\n\n")) + "</body></html>\n"
            boundary = f"=_alt_{self.seq:07d}"
            part = multipart("alternative", boundary, [
                leaf("text/plain", body, charset, self.transfer()),
                leaf("text/html", html, charset, self.transfer()),
            ])
        else:
            part = leaf("text/plain", body, charset, self.transfer())
        if attach:
            ctype, filename, data = attach
            boundary = f"=_mix_{self.seq:07d}"
            fname = encode_words(filename, "utf-8", self.rng)
            att = (f"Content-Type: {ctype}; name=\"{fname}\"\n"
                   f"Content-Disposition: attachment; filename=\"{fname}\"\n"
                   "Content-Transfer-Encoding: base64\n\n").encode() + base64.encodebytes(data)
            part = multipart("mixed", boundary, [part, att])
        head = "".join(f"{n}: {v}\n" for n, v in out).encode("ascii")
        return head + part


KOI8_PLAIN = str.maketrans({"«": '"', "»": '"', "—": "-", "–": "-"})


def plain(text: str, charset: str) -> str:
    return text.translate(KOI8_PLAIN) if charset == "koi8-r" else text


def leaf(ctype: str, text: str, charset: str, transfer: str) -> bytes:
    data = plain(text, charset).encode(charset, errors="replace")
    if transfer == "base64":
        encoded = base64.encodebytes(data)
    elif transfer == "quoted-printable":
        encoded = quopri.encodestring(data)
        if not encoded.endswith(b"\n"):
            encoded += b"\n"
    else:
        encoded = data
        transfer = "8bit" if any(b > 127 for b in data) else "7bit"
    return (f"Content-Type: {ctype}; charset=\"{charset}\"\n"
            f"Content-Transfer-Encoding: {transfer}\n\n").encode() + encoded


def multipart(subtype: str, boundary: str, parts: list) -> bytes:
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\n\n"
           "This is a multi-part message in MIME format.\n".encode()]
    for p in parts:
        out.append(f"\n--{boundary}\n".encode())
        out.append(p)
    out.append(f"\n--{boundary}--\n".encode())
    return b"".join(out)


def encode_words(text: str, charset: str, rng: random.Random) -> str:
    """RFC 2047 encoded words (B or Q), folded; ASCII text stays as it is."""
    if all(ord(c) < 128 for c in text):
        return text
    mode = "B" if rng.random() < 0.6 else "Q"
    words, chunk = [], ""
    for ch in plain(text, charset):
        if len((chunk + ch).encode(charset, errors="replace")) > (30 if mode == "B" else 20):
            words.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        words.append(chunk)
    encoded = []
    for w in words:
        data = w.encode(charset, errors="replace")
        if mode == "B":
            payload = base64.b64encode(data).decode()
        else:
            payload = "".join(
                "_" if b == 0x20 else (chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122)
                                       else f"={b:02X}")
                for b in data)
        encoded.append(f"=?{charset}?{mode}?{payload}?=")
    return "\n ".join(encoded)


def generate(count: int, seed: int, big_bytes: int = 0, mix: str = "project"):
    """Yields `count` messages (bytes); with `big_bytes`, the middle one carries that big an
    attachment."""
    corpus = Corpus(seed, mix)
    for i in range(count):
        yield corpus.next(big_bytes if big_bytes and i == count // 2 else 0)


def write_maildir(out: str, messages) -> int:
    for d in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    total = 0
    for i, data in enumerate(messages):
        # Names sort in delivery order, as real Maildir names do.
        name = f"{1793000000 + i * 37}.M{i:07d}P1.bench:2,"
        with open(os.path.join(out, "cur", name), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def write_mbox(out: str, messages) -> int:
    total = 0
    with open(out, "wb") as f:
        for i, data in enumerate(messages):
            when = (START + timedelta(seconds=37 * i)).strftime("%a %b %d %H:%M:%S %Y")
            f.write(f"From MAILER-DAEMON {when}\n".encode())
            for line in data.splitlines(keepends=True):
                stripped = line.lstrip(b">")
                if stripped.startswith(b"From "):
                    line = b">" + line
                f.write(line)
            if not data.endswith(b"\n"):
                f.write(b"\n")
            f.write(b"\n")
            total += len(data)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=["maildir", "mbox"], default="maildir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--big-mb", type=float, default=0,
                    help="put one message with an attachment this many MiB in the middle")
    ap.add_argument("--mix", choices=sorted(MIXES), default="project",
                    help="the project's mix, or the heavier second corpus of issue 18")
    args = ap.parse_args()
    messages = generate(args.count, args.seed, int(args.big_mb * 1024 * 1024), args.mix)
    write = write_maildir if args.format == "maildir" else write_mbox
    total = write(args.out, messages)
    print(f"{args.count} messages, {total} bytes, {total / max(1, args.count) / 1024:.1f} KiB average")


if __name__ == "__main__":
    main()
