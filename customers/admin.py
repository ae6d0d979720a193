from django.contrib import admin

from customers.models import Customer, Tenant

admin.site.register(Customer)
admin.site.register(Tenant)
